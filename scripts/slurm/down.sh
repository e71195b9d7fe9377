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

# shellcheck source=daemons.sh
source "$(dirname "${BASH_SOURCE[0]}")/daemons.sh"

# the Slurm daemons together (a job's processes end with slurmd's steps), then what they use
stop_daemons slurmd slurmctld slurmdbd | sed "s/^/down.sh: /"
if [ -d "$RUN" ] && mariadb-admin --socket="$MYSQL_SOCKET" ping >/dev/null 2>&1; then
    mariadb --socket="$MYSQL_SOCKET" -u root -e "DROP DATABASE IF EXISTS $DB; DROP USER IF EXISTS 'slurm'@'localhost';" ||
        echo "down.sh: warning: could not drop the database $DB" >&2
fi
stop_daemons mariadbd munged | sed "s/^/down.sh: /"

for f in "$CONF/slurm.conf" "$CONF/slurmdbd.conf"; do
    if [ -e "$f" ] && grep -qF "$MARKER" "$f"; then
        rm -f "$f"
    fi
done
rm -rf "$SPOOL" "$RUN" "$LOG"
