#!/bin/sh
# The `db` service: PostgreSQL 15 on 127.0.0.1:$DB_PORT (host networking), initialised on first start
# with the superuser password read from the compose secret, never from argv or the environment.
set -eu
data=/var/lib/postgresql/data
if [ ! -s "$data/PG_VERSION" ]; then
    install -d -o postgres -g postgres -m 0700 "$data"
    # initdb runs as postgres, which cannot read the root-owned secret: hand it a private copy.
    install -o postgres -g postgres -m 0600 /run/secrets/db_password /tmp/pwfile
    setpriv --reuid=postgres --regid=postgres --init-groups \
        initdb --pgdata="$data" --username=postgres --pwfile=/tmp/pwfile --auth=scram-sha-256 \
        --encoding=UTF8 --locale=C.UTF-8 --no-sync >/dev/null
    rm -f /tmp/pwfile
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups \
    postgres -D "$data" -c listen_addresses=127.0.0.1 -c port="$DB_PORT" -c unix_socket_directories=/tmp \
    -c fsync=off -c full_page_writes=off
