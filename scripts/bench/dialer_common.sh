# Shared by the benchmarks that run `serve` with its dialer (soak.sh,
# setup.sh): sourced, not run. Needs `log`, `die`, `hf` (huifang with the
# run's config), `sql` and `$RUN` from the sourcing script.

# stop_pid PID [SIGNAL] [SECONDS]: signal a process this script started,
# wait up to SECONDS (10) for it, then SIGKILL it; by PID only.
stop_pid() {
    local pid=$1 sig=${2:-TERM} secs=${3:-10}
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    kill -"$sig" "$pid" 2>/dev/null || true
    for _ in $(seq 1 $((secs * 10))); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# free_port: a port free for both UDP and TCP on 127.0.0.1.
free_port() {
    python3 - <<'EOF'
import socket
while True:
    t = socket.socket(); t.bind(("127.0.0.1", 0)); p = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass
    finally:
        u.close(); t.close()
EOF
}

# complaints_only_toml: config lines that leave only the complaint rule on
# (the benchmarks' events are complaints; one task each).
complaints_only_toml() {
    local r
    for r in new_account important dormant existing potential_risk departed_staff; do
        printf '[rules.%s]\nenabled = false\n' "$r"
    done
}

# all_day_every_day_toml: the dialer's calling window open at any hour of
# any day, on the real clock (inside [dialer], then its windows table).
all_day_every_day_toml() {
    local d
    printf 'call_on_non_business_days = true\n\n[dialer.windows]\n'
    for d in mon tue wed thu fri sat sun; do
        printf '%s = ["00:00-24:00"]\n' "$d"
    done
}

# plan_callbacks AGENTS TASKS AS_OF AGENT_HOST NAME: imports a supervisor
# M01 and AGENTS service agents A<n> (softphone sip:agent<n>@AGENT_HOST), TASKS
# clients each with one complaint the day before AS_OF, and plans them:
# TASKS callbacks. The CSVs stay in $RUN.
plan_callbacks() {
    local agents=$1 tasks=$2 as_of=$3 host=$4 name=$5 kind n
    python3 - "$RUN" "$agents" "$tasks" "$as_of" "$host" "$name" <<'EOF'
import datetime, sys
run, agents, tasks, as_of, host, name = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
day = (datetime.date.fromisoformat(as_of) - datetime.timedelta(days=1)).isoformat()
branch = name.upper() + "01"
with open(f"{run}/staff.csv", "w") as f:
    f.write("staff_id,name,role,branch,manager_id,sip_uri,active\n")
    f.write(f"M01,{name} manager,supervisor,{branch},,,true\n")
    for i in range(1, agents + 1):
        f.write(f"A{i:05d},{name} agent {i},service,{branch},M01,sip:agent{i}@{host},true\n")
with open(f"{run}/clients.csv", "w") as f:
    f.write("client_id,name,phone,branch,opened_on,assets_cny,last_trade_on\n")
    for i in range(1, tasks + 1):
        f.write(f"C{i:07d},Client {i},139{i:08d},{branch},2025-03-03,100000,2026-11-02\n")
with open(f"{run}/events.csv", "w") as f:
    f.write("event_id,client_id,kind,occurred_on,note\n")
    for i in range(1, tasks + 1):
        f.write(f"E{i:07d},C{i:07d},complaint,{day},{name}\n")
EOF
    for kind in staff clients events; do
        hf import "$kind" "$RUN/$kind.csv" >>"$RUN/cli.log" 2>&1 || { tail -n 20 "$RUN/cli.log" >&2; die "import $kind failed"; }
    done
    hf plan --as-of "$as_of" >>"$RUN/cli.log" 2>&1 || { tail -n 20 "$RUN/cli.log" >&2; die "plan failed"; }
    n=$(sql "SELECT count(*) FROM tasks")
    [ "$n" = "$tasks" ] || die "plan made $n tasks, not $tasks (see $RUN/cli.log)"
}

# agent_id N: the staff id plan_callbacks gives agent N.
agent_id() { printf 'A%05d' "$1"; }
