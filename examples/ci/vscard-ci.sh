#!/usr/bin/env bash
# A virtual smartcard for a CI job, in steps. The GitHub Actions workflow,
# the GitLab CI job and the Dockerfile beside this file all call it, and a
# test of vscard (cli/tests/ci_recipe.rs) runs it in a fresh private
# namespace, so what these recipes do is what is tested.
#
#   vscard-ci.sh install   Debian packages pcscd, vsmartcard-vpcd, opensc
#                          (and python3-pyscard unless VSCARD_PYTHON is
#                          set); vscard from $VSCARD_DEB if given
#   vscard-ci.sh start     a pcscd if none answers on the socket, then
#                          `vscard serve` (the demo card, or $VSCARD_CARD)
#                          with --control and --ready-file, and
#                          `vscard ctl ... wait` until the card is present
#   vscard-ci.sh check     a login with pkcs11-tool (OpenSC) and one with
#                          pyscard, both through pcscd
#   vscard-ci.sh stop      stops what `start` started (never a pcscd it
#                          found running)
#   vscard-ci.sh run [COMMAND...]
#                          start, then COMMAND (its exit code is the
#                          script's), or without one serve until SIGTERM
#                          or SIGINT; then stop (the container's entry
#                          point)
#
# Environment (all optional):
#   VSCARD          the vscard program (default: `vscard` on PATH)
#   VSCARD_DEB      a vscard .deb for `install`
#   VSCARD_CI_DIR   where start keeps the card, socket, logs and pids
#                   (default: ${RUNNER_TEMP:-/tmp}/vscard-ci); `vscard
#                   ctl $VSCARD_CI_DIR/control.sock status` works there
#   VSCARD_CARD     card images to serve, space-separated (default: the
#                   demo card, PIN 123456, issued into $VSCARD_CI_DIR)
#   VSCARD_PIN      the PIN `check` logs in with (default: 123456)
#   VSCARD_PYTHON   a python with pyscard (default: python3)
#   VSCARD_READY_TIMEOUT  seconds `start` waits for the card (default: 30)
#   PCSCLITE_CSOCK_NAME   pcscd's socket (default: /run/pcscd/pcscd.comm)
#
# Without root it needs either sudo, or a /run/pcscd it may write (then
# pcscd runs as you and vscard is told so: --vpcd-peer any), or to run
# inside `unshare --user --map-root-user --mount --net` (see the README).
set -euo pipefail

dir=${VSCARD_CI_DIR:-${RUNNER_TEMP:-/tmp}/vscard-ci}
socket=${PCSCLITE_CSOCK_NAME:-/run/pcscd/pcscd.comm}
vscard=${VSCARD:-vscard}
pin=${VSCARD_PIN:-123456}
python=${VSCARD_PYTHON:-python3}
ready_timeout=${VSCARD_READY_TIMEOUT:-30}
case $ready_timeout in
'' | *[!0-9]*) echo "vscard-ci: VSCARD_READY_TIMEOUT must be whole seconds, got '$ready_timeout'" >&2; exit 2 ;;
esac
# vpcd's first reader (Debian's /etc/reader.conf.d/vpcd: 0x8C7B = 35963).
vpcd_port_hex=8C7B

say() { echo "vscard-ci: $*"; }
fail() {
    echo "vscard-ci: $*" >&2
    exit 1
}

# sudo when not root and sudo exists; nothing otherwise.
as_root() {
    if [ "$(id -u)" -eq 0 ] || ! command -v sudo >/dev/null 2>&1; then
        "$@"
    else
        sudo "$@"
    fi
}

# Exit 0 if something accepts a connection on the pcscd socket: a pcscd in
# another mount namespace, or a stale socket file, does not count. perl-base
# is essential on Debian; bash cannot open a Unix socket.
socket_answers() {
    [ -S "$socket" ] && perl -MIO::Socket::UNIX -e \
        'IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $ARGV[0]) or exit 1' \
        "$socket" 2>/dev/null
}

# Exit 0 if something listens on vpcd's port in this network namespace
# (from /proc/net/tcp*, so iproute2 is not needed; state 0A is LISTEN).
vpcd_listens() {
    awk -v port=":$vpcd_port_hex" \
        'FNR > 1 && substr($2, length($2) - 4) == port && $4 == "0A" { found = 1 } END { exit !found }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# Waits up to $1 seconds for the check $2 (polled every 0.1 s).
wait_for() {
    local tenths=$(($1 * 10)) i
    for ((i = 0; i < tenths; i++)); do
        if "$2"; then
            return 0
        fi
        sleep 0.1
    done
    "$2"
}

# True while process $1 runs (as root's processes are not ours to signal,
# /proc is asked rather than kill -0) and, when names are given ($2, space-
# separated), is one of them: a pid file whose process died and whose pid
# was reused names someone else, who is not ours to stop.
running() {
    [ -n "$1" ] && [ -d "/proc/$1" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ] || return 1
    [ -z "${2:-}" ] && return 0
    local comm name
    comm=$(cat "/proc/$1/comm" 2>/dev/null) || return 1
    for name in $2; do
        [ "$comm" = "$name" ] && return 0
    done
    return 1
}

# The names a started process may have: serve runs as the vscard program;
# pcscd directly, or under the sudo that started it.
serve_names="$(basename "$vscard")"
pcscd_names="pcscd sudo"

# Makes $dir, or checks the one there is ours: the pid files, logs and
# PIN-bearing data in it must not be another user's to plant or read.
own_dir() {
    if [ ! -e "$dir" ] && [ ! -L "$dir" ]; then
        mkdir -p "$(dirname "$dir")"
        mkdir -m 700 "$dir"
    fi
    if [ -L "$dir" ] || [ ! -d "$dir" ] || [ ! -O "$dir" ]; then
        fail "$dir is not a folder of yours: set VSCARD_CI_DIR to one"
    fi
    chmod 700 "$dir"
}

# Sends SIGTERM to $1 (a pid file's content) and waits up to $2 seconds.
stop_process() {
    local pid=$1 who=$2 limit=$3 names=${4:-}
    if ! running "$pid" "$names"; then
        return 0
    fi
    as_root kill -TERM "$pid" 2>/dev/null || true
    local i
    for ((i = 0; i < limit * 10; i++)); do
        running "$pid" "$names" || return 0
        sleep 0.1
    done
    echo "vscard-ci: $who (pid $pid) did not stop within $limit s: killing it" >&2
    as_root kill -KILL "$pid" 2>/dev/null || true
}

cmd_install() {
    local packages=(pcscd vsmartcard-vpcd opensc)
    if [ -z "${VSCARD_PYTHON:-}" ]; then
        packages+=(python3-pyscard)
    fi
    local missing=() p
    for p in "${packages[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$p")
        fi
    done
    if ((${#missing[@]})); then
        say "installing ${missing[*]}"
        as_root apt-get update -qq
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}"
    else
        say "${packages[*]} already installed"
    fi
    if [ -n "${VSCARD_DEB:-}" ]; then
        [ -f "$VSCARD_DEB" ] || fail "VSCARD_DEB=$VSCARD_DEB: no such file"
        say "installing $VSCARD_DEB"
        as_root dpkg -i "$VSCARD_DEB" >/dev/null
    fi
    command -v "$vscard" >/dev/null 2>&1 ||
        fail "no vscard program ($vscard): set VSCARD_DEB to a vscard .deb, or VSCARD to the program"
    say "$("$vscard" --version) at $(command -v "$vscard")"
}

cmd_start() {
    command -v "$vscard" >/dev/null 2>&1 || fail "no vscard program ($vscard): run '$0 install' first"
    if [ -f "$dir/serve.pid" ] && running "$(cat "$dir/serve.pid")" "$serve_names"; then
        fail "already started (vscard serve pid $(cat "$dir/serve.pid")): '$0 stop' first"
    fi
    own_dir
    rm -f "$dir/ready" "$dir/serve.pid"
    local peer=pcscd
    if [ -f "$dir/pcscd.pid" ] && running "$(cat "$dir/pcscd.pid")" "$pcscd_names" && socket_answers; then
        # An earlier start's pcscd (its serve has ended): still ours to stop.
        say "using the pcscd an earlier start started (pid $(cat "$dir/pcscd.pid"))"
        if [ "$(stat -c %u "/proc/$(cat "$dir/pcscd.pid")")" -ne 0 ]; then
            peer=any
        fi
    elif socket_answers; then
        rm -f "$dir/pcscd.pid"
        say "using the pcscd that answers on $socket"
    else
        rm -f "$dir/pcscd.pid"
        local run_dir
        run_dir=$(dirname "$socket")
        if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
            [ -w "$run_dir" ] || fail "no pcscd answers on $socket, and $run_dir is not writable" \
                "(run as root, with sudo, with a writable $run_dir, or inside" \
                "'unshare --user --map-root-user --mount --net')"
        fi
        local launcher=()
        if [ "$(id -u)" -ne 0 ] && [ -w "$run_dir" ]; then
            # pcscd as this user; vscard's peer check wants root's pcscd.
            say "no pcscd answers on $socket: starting one as $(id -un) (stopped again by '$0 stop')"
            peer=any
        else
            say "no pcscd answers on $socket: starting one (stopped again by '$0 stop')"
            if [ "$(id -u)" -ne 0 ]; then
                # sudo resets the environment: hand pcscd its socket path.
                launcher=(sudo env "PCSCLITE_CSOCK_NAME=$socket")
            fi
            as_root mkdir -p "$run_dir"
        fi
        nohup "${launcher[@]}" pcscd --foreground >"$dir/pcscd.log" 2>&1 &
        local pid=$!
        if ! wait_for 10 socket_answers; then
            cat "$dir/pcscd.log" >&2
            stop_process "$pid" pcscd 5 "$pcscd_names"
            fail "the pcscd it started does not answer on $socket after 10 s"
        fi
        if ((${#launcher[@]})); then
            # pcscd's own pid: the background job is sudo.
            pid=$(tr -d '\0' <"$run_dir/pcscd.pid" 2>/dev/null || echo "$pid")
        fi
        echo "$pid" >"$dir/pcscd.pid"
    fi
    # pcscd loads its drivers at start-up; vpcd then listens on its port.
    if ! wait_for 10 vpcd_listens; then
        fail "pcscd answers on $socket but nothing listens on vpcd's port 127.0.0.1:35963" \
            "in this network namespace: that pcscd has no vpcd driver (started before" \
            "vsmartcard-vpcd was installed?) or runs in another network namespace;" \
            "restart it, or stop it and let '$0 start' start one"
    fi
    # shellcheck disable=SC2086 # VSCARD_CARD is a list of paths
    nohup "$vscard" --state-dir "$dir/home" serve ${VSCARD_CARD:-} --vpcd-peer "$peer" \
        --control "$dir/control.sock" --ready-file "$dir/ready" \
        --vpcd-timeout "$ready_timeout" >"$dir/serve.log" 2>&1 &
    echo $! >"$dir/serve.pid"
    if ! "$vscard" ctl "$dir/control.sock" wait --timeout "$ready_timeout"; then
        echo "--- vscard serve ($dir/serve.log) ---" >&2
        cat "$dir/serve.log" >&2
        cmd_stop >&2
        fail "the card did not come up within $ready_timeout s"
    fi
    # serve writes its ready file a moment after the socket says present:
    # when start returns, both say so.
    ready_file_written() { [ -f "$dir/ready" ]; }
    wait_for 5 ready_file_written || fail "vscard serve wrote no $dir/ready"
    "$vscard" ctl "$dir/control.sock" status
    if [ -n "${GITHUB_ENV:-}" ]; then
        echo "VSCARD_CONTROL=$dir/control.sock" >>"$GITHUB_ENV"
    fi
    say "ready: vscard ctl $dir/control.sock status"
}

cmd_check() {
    local data=$dir/check.data sig=$dir/check.sig mechanism=SHA256-RSA-PKCS
    own_dir
    printf 'vscard-ci check\n' >"$data"
    rm -f "$sig"
    # The PIN from the environment, not the command line (pkcs11-tool reads
    # `env:NAME`): other local users can read a command line. Key 01 (PIV
    # slot 9A) is listed only after a login (and --id does not filter the
    # list: the type is read from the object whose ID is 01).
    if ! VSCARD_CI_PIN=$pin pkcs11-tool --login --pin env:VSCARD_CI_PIN --list-objects \
        --type privkey >"$dir/pkcs11-tool.log" 2>&1; then
        cat "$dir/pkcs11-tool.log" >&2
        fail "pkcs11-tool could not log in"
    fi
    local key_type
    key_type=$(awk '/^Private Key Object;/ { type = $4 } /^ *ID: *01$/ { print type; exit }' \
        "$dir/pkcs11-tool.log")
    if [ "$key_type" = EC ]; then
        mechanism=ECDSA-SHA256
    fi
    VSCARD_CI_PIN=$pin pkcs11-tool --login --pin env:VSCARD_CI_PIN --sign --id 01 \
        -m "$mechanism" -i "$data" -o "$sig" >"$dir/pkcs11-tool.log" 2>&1 || {
        cat "$dir/pkcs11-tool.log" >&2
        fail "pkcs11-tool could not log in and sign"
    }
    say "pkcs11-tool: logged in, signed with key 01 ($mechanism, $(wc -c <"$sig") bytes)"
    VSCARD_CI_PIN=$pin "$python" - <<'EOF'
import os
import sys

from smartcard.System import readers

# PIV (SP 800-73-4): SELECT the application, then VERIFY the PIN (key
# reference 80), padded with FF to 8 bytes.
PIV_AID = [0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00]
pin = list(os.environ["VSCARD_CI_PIN"].encode().ljust(8, b"\xff"))
found = [r for r in readers() if str(r).startswith("Virtual PCD")]
if not found:
    sys.exit(f"vscard-ci: pyscard: no Virtual PCD reader among {[str(r) for r in readers()]}")
connection = found[0].createConnection()
connection.connect()
_, sw1, sw2 = connection.transmit([0x00, 0xA4, 0x04, 0x00, len(PIV_AID)] + PIV_AID + [0x00])
if sw1 not in (0x90, 0x61):
    sys.exit(f"vscard-ci: pyscard: SELECT PIV answered {sw1:02X}{sw2:02X}")
_, sw1, sw2 = connection.transmit([0x00, 0x20, 0x00, 0x80, 0x08] + pin)
print(f"vscard-ci: pyscard: VERIFY PIN in {found[0]} -> {sw1:02X}{sw2:02X}")
sys.exit(0 if (sw1, sw2) == (0x90, 0x00) else 1)
EOF
}

cmd_stop() {
    local stopped=0
    if [ -f "$dir/serve.pid" ]; then
        local pid
        pid=$(cat "$dir/serve.pid")
        if running "$pid" "$serve_names"; then
            say "stopping vscard serve (pid $pid)"
            stop_process "$pid" "vscard serve" 10 "$serve_names"
            stopped=1
        fi
        rm -f "$dir/serve.pid"
    fi
    if [ -f "$dir/pcscd.pid" ]; then
        local pid
        pid=$(cat "$dir/pcscd.pid")
        if running "$pid" "$pcscd_names"; then
            say "stopping the pcscd it started (pid $pid)"
            stop_process "$pid" pcscd 10 "$pcscd_names"
            stopped=1
        fi
        rm -f "$dir/pcscd.pid"
    fi
    if ((stopped == 0)); then
        say "nothing to stop"
    fi
}

cmd_run() {
    trap 'cmd_stop' EXIT
    cmd_start
    if (($#)); then
        local status=0
        "$@" || status=$?
        exit "$status"
    fi
    # No command: serve until told to stop. `wait` returns when a trapped
    # signal arrives (a container's SIGTERM), or when serve ends.
    trap 'exit 0' TERM INT
    say "serving until SIGTERM or SIGINT"
    local status=0
    wait "$(cat "$dir/serve.pid")" || status=$?
    echo "--- vscard serve ($dir/serve.log) ---" >&2
    cat "$dir/serve.log" >&2
    fail "vscard serve ended by itself (exit status $status)"
}

case "${1:-}" in
install) cmd_install ;;
start) cmd_start ;;
check) cmd_check ;;
stop) cmd_stop ;;
run)
    shift
    cmd_run "$@"
    ;;
*)
    echo "usage: $0 install | start | check | stop | run [COMMAND...]" >&2
    exit 2
    ;;
esac
