# ember in a container: one image for the head and for workers.
#
#   docker build -t ember:latest .
#   docker run --shm-size=2g -e EMBER_OBJECT_STORE_MEMORY=1000000000 \
#       -v "$PWD/docker/ember_token:/run/secrets/ember_token:ro" -p 6379:6379 ember:latest head
#
# The command is the role, "head" or "worker" (then EMBER_HEAD_ADDRESS=HOST:PORT),
# optionally followed by more `ember start` flags; the environment variables read by
# docker/entrypoint.sh set the rest (see the README's "Containers" section).
#
# /dev/shm: each node's object store is a file in /dev/shm. Docker gives a container
# 64 MiB there unless told otherwise (--shm-size, compose's shm_size, or in Kubernetes
# an emptyDir volume with medium: Memory mounted at /dev/shm). When /dev/shm is smaller
# than the store, ember puts the store in the session folder on disk instead, which
# works but is slower: size /dev/shm a little above EMBER_OBJECT_STORE_MEMORY.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# ember itself, from this source tree (no compiler needed: its dependencies ship wheels)
WORKDIR /opt/ember-src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install . && rm -rf /opt/ember-src

COPY docker/entrypoint.sh /usr/local/bin/ember-entrypoint
RUN chmod 0755 /usr/local/bin/ember-entrypoint \
    && useradd --create-home --uid 1000 --shell /usr/sbin/nologin ember

# A non-root user: the per-user runtime folder and ~/.ember (token, cluster record)
# are this user's, 0700, as on any machine.
USER ember
WORKDIR /home/ember
ENV EMBER_TOKEN_FILE=/run/secrets/ember_token

# The control service's port (the head). Node daemons and workers listen on ports
# chosen at start: containers of one network or pods of one cluster reach each other
# on any port, so only this one needs publishing for `ember status` from outside.
EXPOSE 6379

ENTRYPOINT ["ember-entrypoint"]
CMD ["head"]
