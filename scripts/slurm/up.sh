#!/usr/bin/env bash
# Start a single-node Slurm on this machine for karstflow's `slurm` test (tests/test_slurm.py)
# and for trying workflow/profiles/slurm by hand; stop it with scripts/slurm/down.sh.
#
# Idempotent: installs the Debian packages of scripts/slurm/packages.txt that are missing,
# writes /etc/slurm/slurm.conf and slurmdbd.conf from the templates beside this script,
# starts munged, MariaDB, slurmdbd, slurmctld and slurmd WITHOUT systemd (a container has
# none) as background processes with pid files under $RUN and logs under $LOG, registers
# the cluster, the account and the users in the accounting database, and waits until the
# node is idle and sacct answers. A second call with everything up does nothing.
#
# Why slurmdbd and MariaDB and not a Slurm without accounting: the Snakemake executor
# (snakemake-executor-plugin-slurm 2.8.0, .venv/lib/python3.11/site-packages/
# snakemake_executor_plugin_slurm/) asks for job states with
#   sacct -X --parsable2 --clusters all --noheader --format=JobIdRaw,State --name <run uuid>
# (job_status_query.py, query_job_status_sacct). Its default `status_command` is "sacct"
# whenever a `sacct` binary is on PATH (__init__.py, _get_status_command_default), and slurm-
# client always ships one; even with `--slurm-status-command squeue` it goes back to sacct
# when MinJobAge < 3 x init_seconds_before_status_checks (__init__.py, check_active_jobs).
# Without a slurmdbd, sacct only prints "Slurm accounting storage is disabled" and exits 1:
# query_job_status returns (None, None), check_active_jobs skips its `if status_of_jobs is
# not None` block, so no job is ever reported finished or failed (plugin issue #38, where
# the same query crashed the run: github.com/snakemake/snakemake-executor-plugin-slurm/
# issues/38; the cancel path `scancel --clusters=all` needs the database too). The accounts
# are checked with `sacctmgr list user` (accounts.py, validate_account), which also needs
# the database, and the test reads each job's MaxRSS and ReqMem from sacct.
#
# Environment: KARSTFLOW_SLURM_TIMEOUT (seconds to wait for each daemon, default 90).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOG=/var/log/karstflow-slurm
RUN=/run/karstflow-slurm
SPOOL=/var/spool/karstflow-slurm
CONF=/etc/slurm
CLUSTER=karstflow
PARTITION=main
ACCOUNT=karstflow
DB=karstflow_slurm_acct_db
MARKER="written by karstflow scripts/slurm/up.sh"
TIMEOUT=${KARSTFLOW_SLURM_TIMEOUT:-90}
MYSQL_SOCKET=/run/mysqld/mysqld.sock
# shellcheck source=daemons.sh
source "$HERE/daemons.sh"

log_tails() {
    local f
    if command -v sinfo >/dev/null && pid_of slurmctld >/dev/null; then
        echo "----- sinfo"
        sinfo -N -o '%N %T %E' 2>&1 | head -n 5
    fi
    for f in "$LOG"/*.log "$LOG"/*.out; do
        [ -s "$f" ] || { echo "----- $f is empty"; continue; }
        echo "----- last lines of $f"
        tail -n 30 "$f"
    done
}

die() {
    echo "scripts/slurm/up.sh: $*" >&2
    log_tails >&2
    exit 1
}

if [ "$(id -u)" != 0 ]; then
    echo "scripts/slurm/up.sh: must run as root (installs packages, starts system daemons); found uid $(id -u)" >&2
    exit 1
fi

# --------------------------------------------------------------------------------------
# daemon bookkeeping: each daemon runs in the foreground of its own session; its pid is
# $RUN/<name>.pid, its stdout/stderr $LOG/<name>.out
# --------------------------------------------------------------------------------------
pids_named() { # name -> pids of every process whose argv[0] is that program (no procps needed)
    local p exe
    for p in /proc/[0-9]*; do
        exe=
        { IFS= read -r -d '' exe <"$p/cmdline"; } 2>/dev/null
        [ "${exe##*/}" = "$1" ] && printf '%s ' "${p#/proc/}"
    done
    return 0
}

start() { # name command...
    local name=$1
    shift
    if pid_of "$name" >/dev/null; then
        return 0
    fi
    local others
    others=$(pids_named "$name")
    if [ -n "$others" ]; then
        die "a $name not started by up.sh runs already (pid $others); stop it first"
    fi
    setsid "$@" </dev/null >>"$LOG/$name.out" 2>&1 &
    echo $! >"$RUN/$name.pid"
}

alive() { # name -> true while the process start() recorded for it exists and is no zombie.
    # Not pid_of: right after start() the process may still be the forked shell, setsid or
    # setpriv on its way to exec'ing the daemon, and its /proc cmdline reads empty in the
    # middle of an exec; a name check then reported a starting munged as dead (CI, stop 20).
    local pid state
    [ -s "$RUN/$1.pid" ] || return 1
    pid=$(cat "$RUN/$1.pid")
    state=$(sed -n 's/^[0-9]* (.*) \([A-Z]\) .*/\1/p' "/proc/$pid/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

wait_for() { # what daemon command...: poll the command until it succeeds; fail at once if
    # the daemon we started (a name, or - for none) has died, or after TIMEOUT seconds
    local what=$1 daemon=$2 i
    shift 2
    for i in $(seq 1 $((TIMEOUT * 2))); do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        if [ "$daemon" != - ] && [ -s "$RUN/$daemon.pid" ] && ! alive "$daemon"; then
            # one more try: it may have answered just before it was checked
            "$@" >/dev/null 2>&1 && return 0
            die "$daemon exited while up.sh waited for $what"
        fi
        sleep 0.5
    done
    die "timed out after ${TIMEOUT}s waiting for $what (command: $*)"
}

# --------------------------------------------------------------------------------------
# packages
# --------------------------------------------------------------------------------------
missing=()
while read -r line; do
    line=${line%%#*}
    line=${line//[[:space:]]/}
    [ -n "$line" ] || continue
    pkg=${line%%=*}
    want=${line#*=}
    have=$(dpkg-query -W -f='${db:Status-Status} ${Version}' "$pkg" 2>/dev/null || true)
    if [ "${have%% *}" != installed ]; then
        missing+=("$pkg=$want")
    elif [ "${have#* }" != "$want" ]; then
        # An installed Slurm or MariaDB of another version is the machine owner's: keep it.
        echo "up.sh: warning: $pkg ${have#* } is installed, scripts/slurm/packages.txt pins $want; using the installed one" >&2
    fi
done <"$HERE/packages.txt"

if [ ${#missing[@]} -gt 0 ]; then
    echo "up.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # a stale package index may not know the pinned versions yet: refresh it once
    if ! apt-cache show "${missing[@]}" >/dev/null 2>&1; then
        apt-get update -q >/dev/null
    fi
    for spec in "${missing[@]}"; do
        if ! apt-cache show "$spec" >/dev/null 2>&1; then
            die "the pinned package $spec of scripts/slurm/packages.txt is not on the Debian mirror" \
                "(apt-cache policy ${spec%%=*} offers: $(apt-cache policy "${spec%%=*}" | awk '/Candidate/{print $2}'));" \
                "update the pins in scripts/slurm/packages.txt"
        fi
    done
    apt-get install -y -q --no-install-recommends "${missing[@]}" >"/tmp/karstflow-slurm-apt.log" 2>&1 ||
        { tail -n 40 /tmp/karstflow-slurm-apt.log >&2; die "apt-get install failed (log: /tmp/karstflow-slurm-apt.log)"; }
fi

install -d -m 0755 "$LOG" "$RUN"
install -d -o slurm -g slurm -m 0755 "$SPOOL" "$SPOOL/ctld"
install -d -m 0755 "$SPOOL/d"
for f in slurmctld.log slurmdbd.log; do
    touch "$LOG/$f"
    chown slurm:slurm "$LOG/$f"
done
touch "$LOG/munged.log" "$LOG/mariadb.log"
chown munge:munge "$LOG/munged.log"
chown mysql:mysql "$LOG/mariadb.log"

# --------------------------------------------------------------------------------------
# configuration: one node (this machine), one default partition
# --------------------------------------------------------------------------------------
HOST=$(hostname -s)
CPUS=$(nproc)
MEM_TOTAL_MB=$(($(awk '/^MemTotal:/{print $2}' /proc/meminfo) / 1024))
# 2 GB stay for the daemons and the submitting Snakemake; never more than slurmd detects
MEM_MB=$((MEM_TOTAL_MB - 2048))
DETECTED_MB=$(slurmd -C 2>/dev/null | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' | head -n 1)
if [ -n "$DETECTED_MB" ] && [ "$DETECTED_MB" -lt "$MEM_MB" ]; then
    MEM_MB=$DETECTED_MB
fi
[ "$MEM_MB" -ge 1024 ] || die "this machine has ${MEM_TOTAL_MB} MB of memory; the local Slurm needs at least 3 GB"

render() { # template -> stdout
    sed -e "s|@MARKER@|$MARKER|g" -e "s|@CLUSTER@|$CLUSTER|g" -e "s|@HOST@|$HOST|g" \
        -e "s|@SPOOL@|$SPOOL|g" -e "s|@RUN@|$RUN|g" -e "s|@LOG@|$LOG|g" -e "s|@CPUS@|$CPUS|g" \
        -e "s|@MEM_MB@|$MEM_MB|g" -e "s|@PARTITION@|$PARTITION|g" -e "s|@DB@|$DB|g" "$1"
}

changed=0
write_conf() { # template target owner mode
    local new
    new=$(render "$1")
    if [ -e "$2" ] && ! grep -qF "$MARKER" "$2"; then
        die "$2 exists and was not written by up.sh: this machine has a Slurm of its own; not touching it"
    fi
    if [ ! -e "$2" ] || [ "$new" != "$(cat "$2")" ]; then
        printf '%s\n' "$new" >"$2"
        changed=1
    fi
    chown "$3" "$2"
    chmod "$4" "$2"
}
install -d -m 0755 "$CONF"
write_conf "$HERE/slurm.conf.in" "$CONF/slurm.conf" root:root 0644
# slurmdbd refuses a config readable by others
write_conf "$HERE/slurmdbd.conf.in" "$CONF/slurmdbd.conf" slurm:slurm 0600
if [ "$changed" = 1 ]; then
    # a new configuration: restart what runs with the old one
    stop_daemons slurmd slurmctld slurmdbd >/dev/null
fi

# --------------------------------------------------------------------------------------
# munge (authentication between the daemons and the commands)
# --------------------------------------------------------------------------------------
if [ ! -s /etc/munge/munge.key ]; then
    mungekey --create --keyfile=/etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
fi
install -d -o munge -g munge -m 0755 /run/munge
if ! pid_of munged >/dev/null && munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
    echo "up.sh: using the munged that runs already"
else
    # setpriv execs munged as the munge user: the recorded pid is munged's
    start munged setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged --foreground \
        --log-file="$LOG/munged.log"
fi
wait_for "munged (log $LOG/munged.out)" munged bash -c 'munge -n </dev/null | unmunge'

# --------------------------------------------------------------------------------------
# MariaDB and the accounting database
# --------------------------------------------------------------------------------------
if [ ! -d /var/lib/mysql/mysql ]; then
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql --auth-root-authentication-method=socket \
        >>"$LOG/mariadb.out" 2>&1 || die "mariadb-install-db failed"
fi
install -d -o mysql -g mysql -m 0755 /run/mysqld
if ! pid_of mariadbd >/dev/null && mariadb-admin --socket="$MYSQL_SOCKET" ping >/dev/null 2>&1; then
    echo "up.sh: using the MariaDB that runs already"
else
    # no TCP port: slurmdbd reaches it through the socket
    start mariadbd /usr/sbin/mariadbd --user=mysql --skip-networking --socket="$MYSQL_SOCKET" \
        --log-error="$LOG/mariadb.log" --innodb-buffer-pool-size=512M --innodb-lock-wait-timeout=900
fi
wait_for "MariaDB (log $LOG/mariadb.log)" mariadbd mariadb-admin --socket="$MYSQL_SOCKET" ping
mariadb --socket="$MYSQL_SOCKET" -u root <<SQL || die "could not create the accounting database $DB"
CREATE DATABASE IF NOT EXISTS $DB;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED VIA unix_socket;
GRANT ALL ON $DB.* TO 'slurm'@'localhost';
SQL

# --------------------------------------------------------------------------------------
# slurmdbd, then the associations, then slurmctld and slurmd
# --------------------------------------------------------------------------------------
start slurmdbd /usr/sbin/slurmdbd -D
wait_for "slurmdbd (log $LOG/slurmdbd.log)" slurmdbd sacctmgr -n -P list cluster format=cluster

if ! sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER"; then
    sacctmgr -i add cluster "$CLUSTER" >/dev/null || die "sacctmgr could not add the cluster $CLUSTER"
fi
if ! sacctmgr -n -P list account "$ACCOUNT" format=account | grep -qx "$ACCOUNT"; then
    sacctmgr -i add account "$ACCOUNT" Cluster="$CLUSTER" Description="karstflow test account" \
        Organization=karstflow >/dev/null || die "sacctmgr could not add the account $ACCOUNT"
fi
users=(root)
if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
    users+=("$SUDO_USER")
fi
for user in "${users[@]}"; do
    if ! sacctmgr -n -P list assoc cluster="$CLUSTER" account="$ACCOUNT" user="$user" format=user | grep -qx "$user"; then
        sacctmgr -i add user "$user" Account="$ACCOUNT" Cluster="$CLUSTER" >/dev/null ||
            die "sacctmgr could not add the user $user to the account $ACCOUNT"
    fi
    sacctmgr -i modify user where name="$user" set DefaultAccount="$ACCOUNT" >/dev/null 2>&1 || true
done

start slurmctld /usr/sbin/slurmctld -D
wait_for "slurmctld (log $LOG/slurmctld.log)" slurmctld scontrol ping
start slurmd /usr/sbin/slurmd -D

node_idle() {
    local state
    state=$(sinfo -h -n "$HOST" -o %T 2>/dev/null | head -n 1)
    case "$state" in
    idle | mixed | allocated) return 0 ;;
    down* | drain* | fail*) scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true ;;
    esac
    return 1
}
wait_for "node $HOST to be idle (log $LOG/slurmd.log)" slurmd node_idle
wait_for "sacct to answer" - sacct -n -X --starttime now-1hours

echo "up.sh: Slurm is up: cluster $CLUSTER, node $HOST ($CPUS CPUs, $MEM_MB MB), partition $PARTITION," \
    "account $ACCOUNT; logs in $LOG; stop it with scripts/slurm/down.sh"
