#!/usr/bin/env bash
# Stop the single-node Slurm that scripts/slurm/up.sh started, and undo what it set up:
# the daemons it started (by their pid files under /run/karstflow-slurm; a munged or MariaDB
# that ran before up.sh is left running), its accounting database and database user, the
# configuration files it wrote in /etc/slurm, its spool, run and log directories. The
# installed packages stay. Idempotent: with nothing running it does nothing and exits 0.
set -uo pipefail

LOG=/var/log/karstflow-slurm
RUN=/run/karstflow-slurm
SPOOL=/var/spool/karstflow-slurm
CONF=/etc/slurm
DB=karstflow_slurm_acct_db
MARKER="written by karstflow scripts/slurm/up.sh"
MYSQL_SOCKET=/run/mysqld/mysqld.sock

if [ "$(id -u)" != 0 ]; then
    echo "scripts/slurm/down.sh: must run as root; found uid $(id -u)" >&2
    exit 1
fi

pid_of() { # name -> pid of the daemon up.sh started, if it still runs
    local f=$RUN/$1.pid pid exe
    [ -s "$f" ] || return 1
    pid=$(cat "$f")
    exe=
    { IFS= read -r -d '' exe <"/proc/$pid/cmdline"; } 2>/dev/null
    [ "${exe##*/}" = "$1" ] || return 1
    echo "$pid"
}

stop() { # names: TERM to all of them, then KILL what still runs after 30 s
    local name pid i
    local -A pids=()
    for name in "$@"; do
        if pid=$(pid_of "$name"); then
            pids[$name]=$pid
            kill -TERM "$pid" 2>/dev/null
        fi
        rm -f "$RUN/$name.pid"
    done
    for i in $(seq 1 300); do
        for name in "${!pids[@]}"; do
            kill -0 "${pids[$name]}" 2>/dev/null || { echo "down.sh: stopped $name (pid ${pids[$name]})"; unset "pids[$name]"; }
        done
        [ ${#pids[@]} -gt 0 ] || return 0
        sleep 0.1
    done
    for name in "${!pids[@]}"; do
        echo "down.sh: $name (pid ${pids[$name]}) ignored TERM for 30 s; killing it" >&2
        kill -KILL "${pids[$name]}" 2>/dev/null
    done
}

# the Slurm daemons together (a job's processes end with slurmd's steps), then what they use
stop slurmd slurmctld slurmdbd
if [ -d "$RUN" ] && mariadb-admin --socket="$MYSQL_SOCKET" ping >/dev/null 2>&1; then
    mariadb --socket="$MYSQL_SOCKET" -u root -e "DROP DATABASE IF EXISTS $DB; DROP USER IF EXISTS 'slurm'@'localhost';" ||
        echo "down.sh: warning: could not drop the database $DB" >&2
fi
stop mariadbd munged

for f in "$CONF/slurm.conf" "$CONF/slurmdbd.conf"; do
    if [ -e "$f" ] && grep -qF "$MARKER" "$f"; then
        rm -f "$f"
    fi
done
rm -rf "$SPOOL" "$RUN" "$LOG"
