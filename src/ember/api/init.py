"""init() and shutdown(): connect to a cluster or start the embedded local one."""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import uuid
from typing import Any

from ember.api import (
    cluster_loss,
    dashboard_options,
    ignored_options,
    join,
    options as opt,
    runtime_access,
    setup_hook,
)
from ember.api.cluster_runtime import ClusterRuntime
from ember.api.local_cluster import LocalCluster, start_local_cluster
from ember.api.local_mode import LocalModeRuntime, local_mode_resources
from ember.api.runtime import Runtime
from ember.api.validation import check_init_args
from ember.common import session, tls
from ember.common.config import METRICS_SETTINGS, SPILL_SETTINGS, Config
from ember.common.resources import (
    default_memory_bytes,
    default_object_store_bytes,
    detect_cpus,
    detect_gpus,
)
from ember.protocol.messages import PrepareRuntimeEnvRequest
from ember.runtime import current, task_context
from ember.runtime.core_worker import CoreWorker
from ember.runtime_env import runtime_env as renv, upload
from ember.runtime_env.job_env import with_job_env

logger = logging.getLogger(__name__)

_lock = threading.RLock()
_cluster: LocalCluster | None = None
_atexit_registered = False


class InitContext(dict[str, Any]):
    """What init() returns: cluster addresses (dict-like, as Ray's context)."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.address_info = dict(kw)
        self.dashboard_url = kw.get("webui_url", "")

    def __enter__(self) -> InitContext:
        return self

    def __exit__(self, *exc: object) -> None:
        shutdown()

    def disconnect(self) -> None:
        shutdown()


def is_initialized() -> bool:
    """Whether init() has been called in this process (or this is a worker)."""
    return (
        runtime_access.current_or_none() is not None
        or current.worker_or_none() is not None
    )


def _attach_or_init() -> Runtime:
    """What ``runtime_access.runtime()`` calls when no Runtime is installed."""
    with _lock:
        rt = runtime_access.current_or_none()
        if rt is not None:
            return rt
        cw = current.worker_or_none()
        if cw is None:  # a driver's first use: start a local cluster, as Ray does
            init()
            rt = runtime_access.current_or_none()
            assert rt is not None
            return rt
        # A worker process (its entry point started the core worker): tasks
        # inherit the running task's runtime_env, hence no job env here.
        rt = ClusterRuntime(cw, {} if cw.is_driver else None)
        runtime_access.install(rt)
        return rt


runtime_access.set_starter(_attach_or_init)


def init(
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    num_gpus: int | None = None,
    resources: dict[str, float] | None = None,
    labels: dict[str, str] | None = None,
    object_store_memory: int | None = None,
    local_mode: bool = False,
    ignore_reinit_error: bool = False,
    include_dashboard: bool | None = None,
    dashboard_host: str = "127.0.0.1",
    dashboard_port: int | None = None,
    job_config: Any = None,
    configure_logging: bool = True,
    logging_level: int | str = logging.INFO,
    logging_format: str | None = None,
    log_to_driver: bool = True,
    namespace: str | None = None,
    runtime_env: dict[str, Any] | None = None,
    _system_config: dict[str, Any] | None = None,
    **kwargs: Any,
) -> InitContext:
    """Connect to a cluster, or start the embedded local cluster.

    Args:
        address: as in Ray. ``EMBER_ADDRESS`` (or ``RAY_ADDRESS``) replaces
            None and ``"auto"`` when set. None joins the cluster running on this
            machine (the last ``ember start``, or another driver's local
            cluster), else starts a local cluster; ``"auto"`` joins it or raises
            ConnectionError; ``"local"`` always starts a local cluster;
            ``"HOST:PORT"`` connects to that control service. The log says
            which (``ember.api.join``).
        num_cpus, num_gpus, resources, object_store_memory: resources of the
            local cluster's node (only when starting one; a plain init() that
            sets them starts its own cluster instead of joining another
            driver's).
        local_mode: run everything serially in this process (for debugging).
        ignore_reinit_error: make a second init() a no-op instead of an error.
        log_to_driver: stream worker stdout/stderr to this process.
        namespace: the namespace for named actors (default: a fresh one).
        runtime_env: the job's runtime environment (``working_dir``,
            ``py_modules``, ``pip``, ``uv``, ``env_vars``, ``config``, ...;
            ``ember.runtime_env``), under every task's and actor's own.

    Returns:
        A dict-like context with the cluster's addresses.

    Raises:
        RuntimeError: init() was already called (unless ``ignore_reinit_error``).
        ConnectionError: no cluster at ``address``.
    """
    global _cluster, _atexit_registered
    unknown = set(kwargs) - {
        "_node_ip_address",
        "_temp_dir",
        "storage",
        "_enable_object_reconstruction",
        "_plasma_directory",
        "_metrics_export_port",
        "object_spilling_directory",
        "enable_resource_isolation",
    }
    if unknown:
        raise TypeError(f"init() got unexpected keyword argument(s) {sorted(unknown)}")
    # a submitted job's runtime_env (EMBER_JOB_CONFIG_JSON) is the driver's job env
    runtime_env, hook = setup_hook.split(with_job_env(runtime_env))
    temp_dir = _check_temp_dir(kwargs.get("_temp_dir"))
    ignored_options.check_init({**kwargs, "job_config": job_config})
    dashboard = dashboard_options.check(
        include_dashboard, dashboard_host, dashboard_port
    )
    check_init_args(
        address,
        num_cpus,
        num_gpus,
        resources,
        labels,
        object_store_memory,
        namespace,
        runtime_env,
        {
            "local_mode": local_mode,
            "ignore_reinit_error": ignore_reinit_error,
            "log_to_driver": log_to_driver,
        },
    )
    with _lock:
        if is_initialized():
            if ignore_reinit_error:
                logger.info(
                    "Calling ember.init() again after it has already been called."
                )
                return _context()
            raise RuntimeError(
                "Maybe you called ember.init twice by accident? This error can be suppressed "
                "by passing in 'ignore_reinit_error=True' or by calling 'ember.shutdown()' "
                "prior to 'ember.init()'."
            )
        # working_dir / py_modules are packed now: a package over the limit (or a
        # missing folder) fails before any process starts; they are uploaded below.
        job_env, packages = upload.pack_env(renv.normalize(runtime_env, job_level=True))
        if configure_logging:
            logging.basicConfig(
                level=logging_level,
                format=logging_format
                or "%(asctime)s\t%(levelname)s %(filename)s:%(lineno)s -- %(message)s",
            )
        overrides = opt.system_config_overrides(
            _system_config, Config.__dataclass_fields__
        )
        if kwargs.get("_metrics_export_port") is not None:  # Ray's init() keyword
            overrides["metrics_export_port"] = int(kwargs["_metrics_export_port"])
        if kwargs.get("object_spilling_directory"):  # Ray's init() keyword
            overrides["object_spilling_directory"] = str(
                kwargs["object_spilling_directory"]
            )
        if local_mode:
            if renv.content_hash(job_env):
                ignored_options.warn_ignored(
                    "init(runtime_env=...)'s "
                    + ", ".join(sorted(renv.built_part(job_env))),
                    "local_mode runs every task in the driver's own Python and folder",
                )
            if temp_dir is not None:
                ignored_options.warn_ignored(
                    "init(_temp_dir=...)",
                    "local_mode runs everything in the driver and keeps no session folder",
                )
            if hook is not None:
                ignored_options.warn_ignored(
                    "init(runtime_env={'worker_process_setup_hook': ...})",
                    "local_mode runs every task in the driver, which runs no setup hook",
                )
            runtime_access.install(
                LocalModeRuntime(
                    namespace or str(uuid.uuid4()),
                    (runtime_env or {}).get("env_vars", {}),
                    local_mode_resources(num_cpus, num_gpus, resources),
                )
            )
            _register_atexit()
            return _context()
        node_args = (num_cpus, num_gpus, resources, object_store_memory)
        choice = join.choose(address, own_node=any(a is not None for a in node_args))
        config = Config.from_env(overrides)
        if not choice.control:
            cw = _start_local(
                config,
                num_cpus,
                num_gpus,
                resources,
                object_store_memory,
                log_to_driver,
                namespace,
                labels,
                temp_dir,
            )
            _start_dashboard(dashboard)
        else:
            if temp_dir is not None:
                ignored_options.warn_ignored(
                    "init(_temp_dir=...)",
                    "it applies when init() starts a cluster; this driver joins a "
                    "running one, whose session folders its head chose",
                )
            if labels is not None:
                raise ValueError(
                    "When connecting to an existing cluster, labels must not be "
                    "provided: a node's labels are set when it starts (ember start "
                    "--labels)."
                )
            join.check_no_node_args(*node_args)
            logger.info(join.describe(choice))
            cw = join.connect(choice, config, log_to_driver)
            try:
                cw.run(
                    cw.register_job(namespace or str(uuid.uuid4()), _driver_sys_path())
                )
            except BaseException:
                cw.shutdown()
                raise
            dashboard_options.joined(cw)
            logger.info("Connected to the ember cluster.%s", dashboard_options.view())
        try:
            cw.run(upload.send(cw.control.call, packages))
            if hook is not None:
                job_env = setup_hook.install(cw, job_env, hook)
        except BaseException:
            cw.shutdown()
            _stop_cluster()
            raise
        _eager_install(cw, job_env)
        rt = ClusterRuntime(cw, job_env)
        runtime_access.install(rt)
        if choice.control:  # not ours: it may stop under us
            cluster_loss.watch(cw, rt, choice.record)
        _register_atexit()
        return _context()


def _eager_install(cw: CoreWorker, job_env: dict[str, Any]) -> None:
    """``config.eager_install`` (default True): the driver's node starts setting
    the job's pip/uv env up now, before its first task asks for it."""
    config = job_env.get("config") or {}
    if config.get("eager_install", True) and renv.content_hash(job_env):
        request = PrepareRuntimeEnvRequest(runtime_env=renv.for_wire(job_env))
        cw.loop_thread.call(cw.node_conn.notify, "node.prepare_runtime_env", request)


def _register_atexit() -> None:
    global _atexit_registered
    if not _atexit_registered:
        atexit.register(shutdown)
        _atexit_registered = True


def _start_local(
    config: Config,
    num_cpus: int | None,
    num_gpus: int | None,
    resources: dict[str, float] | None,
    object_store_memory: int | None,
    log_to_driver: bool,
    namespace: str | None,
    labels: dict[str, str] | None = None,
    temp_dir: str | None = None,
) -> CoreWorker:
    global _cluster
    if num_cpus is not None and (not isinstance(num_cpus, int) or num_cpus < 0):
        raise ValueError(f"num_cpus must be a non-negative int, got {num_cpus!r}")
    if resources:
        opt.validate_task_options({"resources": resources}, in_options=False)
        fractional = {k: v for k, v in resources.items() if float(v) != int(v)}
        if fractional:
            raise ValueError(
                f"Resource quantities of a node must be whole numbers, got {fractional}. "
                "(Requests of tasks and actors may be fractional.)"
            )
    store = int(object_store_memory or default_object_store_bytes())
    cpus = detect_cpus() if num_cpus is None else num_cpus
    gpus = detect_gpus() if num_gpus is None else num_gpus
    totals: dict[str, float] = {
        "CPU": float(cpus),
        "memory": float(default_memory_bytes(store)),
        "object_store_memory": float(store),
        "node:127.0.0.1": 1.0,
        "node:__internal_head__": 1.0,
    }
    if gpus:
        totals["GPU"] = float(gpus)
    totals.update({k: float(v) for k, v in (resources or {}).items()})
    session_dir = session.new_session_dir(temp_dir)
    token = session.new_token()
    _cluster = start_local_cluster(
        session_dir,
        token,
        totals,
        store,
        labels,
        config.as_env(SPILL_SETTINGS + METRICS_SETTINGS),
    )
    try:
        cw = CoreWorker(
            is_driver=True,
            token=token.encode(),
            node_unix=_cluster.node_unix,
            control_address=f"unix:{_cluster.control_unix}",
            session_dir=session_dir,
            node_ip="127.0.0.1",
            config=config,
            log_to_driver=log_to_driver,
        )
        cw.start()
        cw.run(cw.register_job(namespace or str(uuid.uuid4()), _driver_sys_path()))
        # Other drivers of this user here join it (init() with no address, or
        # "auto"), unless a live cluster is recorded already (ember start's).
        here = session.read_cluster_record()
        if here is None or session.dead_processes(here):
            session.write_cluster_record(_cluster.record())
    except BaseException:
        _cluster.stop()
        _cluster = None
        raise
    logger.info("Started a local ember cluster (session %s).", session_dir)
    return cw


def _check_temp_dir(value: Any) -> str | None:
    """``init(_temp_dir=...)``: None or an absolute path (as Ray), as a str."""
    if value is None:
        return None
    if not isinstance(value, str | os.PathLike):
        raise TypeError(
            f"_temp_dir must be a path (str), got {type(value).__name__}: {value!r}"
        )
    path = os.fspath(value)
    if not isinstance(path, str) or not os.path.isabs(path):
        raise ValueError(f"temp_dir must be absolute path or None, got {value!r}.")
    return path


def _driver_sys_path() -> list[str]:
    paths = [p for p in sys.path if p and os.path.isdir(p)]
    main = sys.modules.get("__main__")
    main_file = getattr(main, "__file__", None)
    if main_file:
        paths.insert(0, os.path.dirname(os.path.abspath(main_file)))
    cwd = os.getcwd()
    if cwd not in paths:
        paths.append(cwd)
    return paths


def _context() -> InitContext:
    info = runtime_access.runtime().context_info()
    if not info.get("webui_url") and runtime_access.current_or_none() is not None:
        info["webui_url"] = dashboard_options.current_url()
    return InitContext(**info)


def _start_dashboard(options: dashboard_options.DashboardOptions | None) -> None:
    """The embedded cluster's dashboard, started in the background (init() goes on)."""
    cluster = _cluster
    assert cluster is not None
    dashboard_options.start(cluster, options)
    logger.info("Started a local ember instance.%s", dashboard_options.view())


def shutdown(_exiting_interpreter: bool = False) -> None:
    """Disconnect, and stop the local cluster if this process started it."""
    with _lock:
        rt = runtime_access.current_or_none()
        runtime_access.install(None)
        if rt is not None:
            rt.shutdown()
        tls.use_files(None)  # the files of the cluster this driver was connected to
        dashboard_options.forget()
        _stop_cluster()
        task_context.process_actor.clear()


def _stop_cluster() -> None:
    """Stop the local cluster this process started, if any."""
    global _cluster
    cluster, _cluster = _cluster, None
    if cluster is not None:
        session.remove_cluster_record(cluster.session_dir)
        cluster.stop()


def publish_local_cluster() -> str:
    """Make the local cluster the one other drivers on this machine join.

    init() records it already unless another live cluster was recorded; this
    writes the cluster record (mode 0600; it holds the token) over any other
    and returns the control service's address.
    """
    if _cluster is None:
        raise RuntimeError("this process did not start a local cluster")
    session.write_cluster_record(_cluster.record())
    return _cluster.control_address
