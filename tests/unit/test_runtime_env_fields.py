"""runtime_env checks and normal forms, the merge rule and the content hash (no processes)."""

from __future__ import annotations

import json

import pytest

from ember.runtime_env import RuntimeEnv, RuntimeEnvConfig, runtime_env as renv


def test_pip_forms_normalise_to_one_dict(tmp_path):
    req = tmp_path / "requirements.txt"
    req.write_text("six\n# a comment\n\nattrs==23.1\nsix\n")
    assert renv.normalize({"pip": ["six", "six", "attrs"]})["pip"] == {
        "packages": ["six", "attrs"],
        "pip_check": False,
    }
    assert renv.normalize({"pip": str(req)})["pip"]["packages"] == [
        "six",
        "attrs==23.1",
    ]
    as_dict = renv.normalize(
        {"pip": {"packages": ["six"], "pip_install_options": ["--no-deps"]}}
    )["pip"]
    assert as_dict == {
        "packages": ["six"],
        "pip_check": False,
        "pip_install_options": ["--no-deps"],
    }
    assert "pip" not in renv.normalize({"pip": []})


@pytest.mark.parametrize(
    ("env", "error", "words"),
    [
        ({"pip": 3}, TypeError, "runtime_env['pip']"),
        ({"pip": {"packages": ["a"], "bogus": 1}}, ValueError, "can only have"),
        ({"pip": {"pip_check": True}}, ValueError, "'packages'"),
        ({"pip": {"packages": ["a"], "pip_check": "yes"}}, TypeError, "pip_check"),
        ({"uv": {"packages": "a"}}, ValueError, "must be of type list"),
        (
            {"pip": ["a"], "uv": ["b"]},
            ValueError,
            "cannot be specified at the same time",
        ),
        ({"env_vars": {"A": 1}}, TypeError, "Dict[str, str]"),
        ({"excludes": "x"}, TypeError, "List[str]"),
        ({"py_modules": "mod"}, TypeError, "list of strings"),
        ({"working_dir": 5}, TypeError, "working_dir"),
        ({"config": {"setup_timeout_seconds": 0}}, ValueError, "greater than zero"),
        ({"config": 5}, TypeError, "RuntimeEnvConfig"),
        ({1: "x"}, TypeError, "keys must be str"),
    ],
)
def test_bad_fields_raise_typed_errors(env, error, words):
    with pytest.raises(error, match=None) as info:
        renv.normalize(env)
    assert words in str(info.value)


def test_unknown_fields_are_kept_as_ray_keeps_plugin_fields():
    assert renv.normalize({"my_plugin": {"a": 1}}) == {"my_plugin": {"a": 1}}
    assert renv.content_hash({"my_plugin": 1}) == ""


def test_local_paths_only_at_job_level(tmp_path):
    assert renv.normalize({"working_dir": str(tmp_path)})["working_dir"] == str(
        tmp_path.resolve()
    )
    with pytest.raises(ValueError, match="only supported at the job level"):
        renv.normalize({"working_dir": str(tmp_path)}, job_level=False)
    with pytest.raises(ValueError, match="does not exist"):
        renv.normalize({"working_dir": str(tmp_path / "missing")})
    uri = "gcs://_ember_pkg_" + "0" * 32 + ".zip"
    assert renv.normalize({"py_modules": [uri]}, job_level=False)["py_modules"] == [uri]
    with pytest.raises(ValueError, match="package store"):
        renv.normalize({"working_dir": "s3://bucket/pkg.zip"})


def test_modules_by_object_become_their_folder():
    import json as json_module

    (folder,) = renv.normalize({"py_modules": [json_module]})["py_modules"]
    assert folder.endswith("/json")


def test_merge_is_per_field_and_per_env_var():
    job = {
        "pip": {"packages": ["a"]},
        "env_vars": {"A": "1", "B": "1"},
        "working_dir": "w",
    }
    task = {"pip": {"packages": ["b"]}, "env_vars": {"B": "2"}}
    assert renv.merge(job, task) == {
        "pip": {"packages": ["b"]},
        "working_dir": "w",
        "env_vars": {"A": "1", "B": "2"},
    }
    assert renv.merge(None, None) == {}


def test_content_hash_ignores_config_and_env_vars():
    a = renv.normalize({"pip": ["six"], "config": {"setup_timeout_seconds": 5}})
    b = renv.normalize({"pip": ["six"], "env_vars": {"X": "1"}})
    assert renv.content_hash(a) == renv.content_hash(b) != ""
    assert renv.content_hash({"env_vars": {"X": "1"}}) == ""
    assert renv.content_hash(renv.normalize({"pip": ["attrs"]})) != renv.content_hash(a)
    # workers of two envs that differ in env vars are not shared
    assert renv.worker_key({}, a) != renv.worker_key({"X": "1"}, a)
    assert renv.worker_key({}, {}) == ""


def test_runtime_env_class_and_config_behave_as_rays():
    env = RuntimeEnv(pip=["six"], env_vars={"A": "b"}, config={"eager_install": False})
    assert isinstance(env, dict)
    assert env.has_pip()
    assert env.pip_config()["packages"] == ["six"]
    assert env.env_vars() == {"A": "b"}
    assert env["config"]["eager_install"] is False
    assert env["config"]["setup_timeout_seconds"] == 600
    back = RuntimeEnv.deserialize(env.serialize())
    assert back.pip_config() == env.pip_config()
    assert json.loads(env.serialize())["env_vars"] == {"A": "b"}
    env["pip"] = ["attrs", "attrs"]
    assert env["pip"]["packages"] == ["attrs"]
    with pytest.raises(TypeError):
        RuntimeEnvConfig(setup_timeout_seconds="10")
    assert RuntimeEnvConfig(setup_timeout_seconds=-1)["setup_timeout_seconds"] == -1
    assert (
        renv.setup_timeout_s({"config": RuntimeEnvConfig(setup_timeout_seconds=-1)})
        is None
    )


def test_wire_form_keeps_what_nodes_build():
    env = renv.normalize(
        {"pip": ["six"], "env_vars": {"A": "1"}, "config": {"eager_install": False}}
    )
    wire = renv.for_wire(env)
    assert set(wire) == {"pip", "config"}
    assert type(wire["config"]) is dict
