# Daemon bookkeeping shared by scripts/slurm/up.sh and down.sh (sourced, not run). Each
# daemon up.sh starts runs in the foreground of its own session; its pid is
# $RUN/<name>.pid. Needs RUN set by the caller.

pid_of() { # name -> pid of the daemon up.sh started, if it still runs as that program
    local f=$RUN/$1.pid pid exe
    [ -s "$f" ] || return 1
    pid=$(cat "$f")
    exe=
    { IFS= read -r -d '' exe <"/proc/$pid/cmdline"; } 2>/dev/null
    [ "${exe##*/}" = "$1" ] || return 1
    echo "$pid"
}

stop_daemons() { # names: TERM to all of them, then KILL what still runs after 30 s
    local name pid i
    local -A pids=()
    for name in "$@"; do
        if pid=$(pid_of "$name"); then
            pids[$name]=$pid
            kill -TERM "$pid" 2>/dev/null || true
        fi
        rm -f "$RUN/$name.pid"
    done
    for i in $(seq 1 300); do
        for name in "${!pids[@]}"; do
            kill -0 "${pids[$name]}" 2>/dev/null || { echo "stopped $name (pid ${pids[$name]})"; unset "pids[$name]"; }
        done
        [ ${#pids[@]} -gt 0 ] || return 0
        sleep 0.1
    done
    for name in "${!pids[@]}"; do
        echo "$name (pid ${pids[$name]}) ignored TERM for 30 s; killing it" >&2
        kill -KILL "${pids[$name]}" 2>/dev/null || true
    done
    return 0
}
