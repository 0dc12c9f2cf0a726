#!/usr/bin/env bash
# OpenTill on a Raspberry Pi OS / Debian box, once, as root, from a checkout of this repository:
#   sudo bash deploy/install.sh             # install (again: it is idempotent) and start the service
#   bash deploy/install.sh --dry-run        # print what it would do; changes nothing, needs no root
# Options:
#   --dry-run      print every step instead of doing it
#   --no-start     enable the service but do not start it (edit /etc/opentill/till.toml first)
#   --prefix DIR   write the files under DIR instead of / (to look at them, or a test); the steps
#                  that act on this machine (apt-get, the user, the venv, udevadm, systemctl) are
#                  only printed
# What it does (docs/deploy-raspberry-pi.md):
#   apt packages; user `opentill` in dialout and lp; /opt/opentill/.venv with this checkout
#   pip-installed; /etc/opentill/till.toml from deploy/till.toml if absent (never overwritten);
#   udev rules (kept if you edited them); the kernel modules the unit's DeviceAllow= needs at boot;
#   volatile journald (SD-card care); the systemd unit, enabled and started.
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"  # the checkout this script is in
PREFIX=""
DRY_RUN=0
START=1
USER_NAME=opentill
PACKAGES=(python3-venv fonts-wqy-microhei jbigkit-bin sqlite3)  # sqlite3: online backups of the journal

usage() { sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --no-start) START=0 ;;
    --prefix)
      [ $# -ge 2 ] || { echo "install.sh: --prefix needs a directory" >&2; exit 2; }
      PREFIX="${2%/}"; shift ;;
    --prefix=*) PREFIX="${1#--prefix=}"; PREFIX="${PREFIX%/}" ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

if [ "$DRY_RUN" = 0 ] && [ -z "$PREFIX" ] && [ "$(id -u)" != 0 ]; then
  echo "install.sh: run as root (sudo bash deploy/install.sh), or try --dry-run" >&2
  exit 1
fi
for f in deploy/opentill.service deploy/99-opentill.rules deploy/till.toml docs/deploy-raspberry-pi.md pyproject.toml; do
  [ -f "$SRC/$f" ] || { echo "install.sh: $SRC/$f missing: run this from an OpenTill checkout" >&2; exit 1; }
done

ETC="$PREFIX/etc"
VENV="$PREFIX/opt/opentill/.venv"
STATE="$PREFIX/var/lib/opentill"
PROFILE="$ETC/opentill/till.toml"
UNIT="$ETC/systemd/system/opentill.service"
RULES="$ETC/udev/rules.d/99-opentill.rules"

say() { printf '== %s\n' "$*"; }
show() { printf '+'; printf ' %q' "$@"; printf '\n'; }

# A step that changes files under PREFIX: printed with --dry-run, else run.
do_file() {
  if [ "$DRY_RUN" = 1 ]; then show "$@"; else "$@"; fi
}

# A step that acts on this machine (packages, users, services): run only for a real install on /.
REAL=0
if [ "$DRY_RUN" = 0 ] && [ -z "$PREFIX" ]; then REAL=1; fi
do_system() {
  if [ "$REAL" = 1 ]; then "$@"; else show "$@"; fi
}
# Files are owned root:GROUP when installed on / as root (a --dry-run shows it); under --prefix, by us.
OWNED=0
if [ -z "$PREFIX" ] && [ "$(id -u)" = 0 ]; then OWNED=1; fi

# write_file MODE PATH: stdin to PATH (atomically, via a temp file beside it) unless the same bytes are there.
write_file() {
  local mode="$1" path="$2" content
  content="$(cat)"
  if [ -f "$path" ] && [ "$(cat "$path")" = "$content" ]; then
    echo "   $path: up to date"
    return
  fi
  if [ "$DRY_RUN" = 1 ]; then
    show write "$path" "(mode $mode)"
    return
  fi
  mkdir -p "$(dirname "$path")"
  printf '%s\n' "$content" > "$path.tmp"
  chmod "$mode" "$path.tmp"
  mv -f "$path.tmp" "$path"
  echo "   $path: written"
}

# copy_file MODE SRC DEST [keep|-] [GROUP]: install SRC as DEST, owned root:GROUP (root); with
# `keep`, a DEST that differs (edited on this till) is kept and the shipped file goes beside it
# as DEST.new.
copy_file() {
  local mode="$1" from="$2" to="$3" keep="${4:-}" group="${5:-root}" target
  target="$to"
  if [ -f "$to" ] && cmp -s "$from" "$to"; then
    echo "   $to: up to date"
    return
  fi
  if [ -f "$to" ] && [ "$keep" = keep ]; then
    target="$to.new"
    echo "   $to: yours is kept; the shipped version goes to $target (diff them)"
  fi
  local -a own=()
  if [ "$OWNED" = 1 ]; then own=(-o root -g "$group"); fi
  do_file install -D -m "$mode" "${own[@]}" "$from" "$target"
}

if [ "$REAL" = 1 ] && ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "install.sh: OpenTill needs Python 3.11 or later (Raspberry Pi OS / Debian 12 bookworm or newer);" \
       "python3 here is $(python3 -V 2>&1 || echo missing)" >&2
  exit 1
fi

say "packages: ${PACKAGES[*]}"
apt_install() {  # the lists of a fresh image may be stale: update only when an install fails
  apt-get install -y --no-install-recommends "$@" || { apt-get update && apt-get install -y --no-install-recommends "$@"; }
}
do_system apt_install "${PACKAGES[@]}"

say "user $USER_NAME (groups dialout, lp)"
if id -u "$USER_NAME" >/dev/null 2>&1; then
  echo "   $USER_NAME exists"
else
  do_system useradd --system --user-group --home-dir /var/lib/opentill --no-create-home \
    --shell /usr/sbin/nologin --comment "OpenTill payment terminal" "$USER_NAME"
fi
do_system usermod --append --groups dialout,lp "$USER_NAME"

say "venv $VENV with $SRC"
if [ -x "$VENV/bin/python" ]; then
  echo "   $VENV exists"
else
  do_system python3 -m venv "$VENV"
fi
# A plain (not editable) install: the venv keeps its own copy, the checkout can go. pip always
# reinstalls a local directory, so a re-run after `git pull` is the update.
do_system "$VENV/bin/pip" install --quiet --upgrade "$SRC"
if [ "$(readlink "$PREFIX/usr/local/bin/till" 2>/dev/null)" != /opt/opentill/.venv/bin/till ]; then
  do_file mkdir -p "$PREFIX/usr/local/bin"  # `till doctor`, `till operator` on the PATH
  do_file ln -sfn /opt/opentill/.venv/bin/till "$PREFIX/usr/local/bin/till"
fi

say "state $STATE (the journal, keys/, operators: systemd's StateDirectory=, made now for \`till operator add\`)"
do_system install -d -m 0700 -o "$USER_NAME" -g "$USER_NAME" "$STATE"

say "profile $PROFILE"
if [ -f "$PROFILE" ]; then
  echo "   $PROFILE exists: never overwritten (the template is $SRC/deploy/till.toml)"
else
  # 0640 root:opentill: the service reads it, it may hold the wallet gateway's key.
  copy_file 0640 "$SRC/deploy/till.toml" "$PROFILE" - "$USER_NAME"
fi

say "udev rules $RULES (stable names under /dev/opentill/)"
copy_file 0644 "$SRC/deploy/99-opentill.rules" "$RULES" keep

say "kernel modules at boot (the unit's DeviceAllow= char-ttyUSB, char-ttyACM, char-usb need their drivers loaded)"
write_file 0644 "$ETC/modules-load.d/opentill.conf" <<'EOF'
# OpenTill (deploy/install.sh): the serial and USB printer drivers, loaded at boot so the device
# families in opentill.service's DeviceAllow= exist when it starts, adapter plugged in or not.
usbserial
cdc_acm
usblp
EOF
do_system modprobe --all usbserial cdc_acm usblp || echo "   (modprobe failed: the modules load at the next boot, or are built in)"
do_system udevadm control --reload
do_system udevadm trigger --subsystem-match=tty

say "journald: volatile (SD-card care; logs are lost at reboot, the journal of sales is not)"
write_file 0644 "$ETC/systemd/journald.conf.d/opentill.conf" <<'EOF'
# OpenTill (deploy/install.sh): keep the system log in RAM, not on the SD card. Machine-wide: to
# keep logs across reboots on a disk that can take it, remove this file and restart journald.
[Journal]
Storage=volatile
RuntimeMaxUse=32M
EOF

say "docs"
copy_file 0644 "$SRC/docs/deploy-raspberry-pi.md" "$PREFIX/usr/share/doc/opentill/deploy-raspberry-pi.md"

say "systemd unit $UNIT"
copy_file 0644 "$SRC/deploy/opentill.service" "$UNIT"

if [ "$REAL" = 1 ] && [ ! -d /run/systemd/system ]; then
  echo "   systemd is not running here (a container or a chroot): enable it on the Pi with"
  echo "   systemctl daemon-reload && systemctl enable --now opentill"
  exit 0
fi
do_system systemctl restart systemd-journald
do_system systemctl daemon-reload
if [ "$START" = 0 ]; then
  do_system systemctl enable opentill
elif [ "$REAL" = 1 ] && systemctl is-active --quiet opentill; then
  do_system systemctl restart opentill  # a re-run is an update: the new code and unit take effect
else
  do_system systemctl enable --now opentill
fi

if [ "$DRY_RUN" = 1 ] || grep -q "CHANGE-ME" "$PROFILE" 2>/dev/null; then
  echo
  echo "Next: edit /etc/opentill/till.toml (the lines marked CHANGE) and"
  echo "/etc/udev/rules.d/99-opentill.rules (your adapters), then:"
  echo "  sudo -u $USER_NAME till doctor --profile /etc/opentill/till.toml"
  echo "  sudo systemctl restart opentill"
fi
say "done: systemctl status opentill; journalctl -u opentill -f"
