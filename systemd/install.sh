#!/usr/bin/env bash
# Installs the Bias Mirror kiosk as a systemd service (Debian, Raspberry Pi OS, Jetson's Ubuntu).
#
#   sudo make install                       # or: sudo systemd/install.sh
#   sudo systemd/install.sh --uninstall     # keeps /etc/bias-mirror and /var/lib/bias-mirror
#   sudo systemd/install.sh --uninstall --purge
#
# What goes where:
#   /opt/bias-mirror                  the app (installation/, assets/, ...) and its venv (.venv)
#   /etc/bias-mirror/kiosk.yaml       the config (made from assets/config/default.yaml once,
#                                     never overwritten)
#   /etc/bias-mirror/mqtt_password    the broker password (root only, 0600; empty at first),
#                                     handed to the kiosk by systemd as a credential
#   /etc/systemd/system/bias-mirror.service (+ .d/ drop-ins: coral.conf, x11.conf)
#   user bias-mirror                  system user, in video, render, input, plugdev, apex (those
#                                     that exist)
# Running it again changes nothing when nothing changed, and says so.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NAME=bias-mirror
USER_NAME=bias-mirror
GROUPS_WANTED=(video render input plugdev apex)
# What the kiosk needs of the checkout (no tests, no training code's data, no .git).
APP_PARTS=(installation model_export assets systemd docs pyproject.toml README.md LICENSE)

ROOT=/
START=1
VENV=1
CORAL=auto
X11=0
UNINSTALL=0
PURGE=0
PYTHON=${PYTHON:-python3}

usage() {
  cat <<EOF
usage: $0 [--root DIR] [--no-start] [--no-venv] [--coral|--no-coral] [--x11]
       $0 --uninstall [--purge] [--root DIR] [--no-start]

  --root DIR    install into DIR as the root of the file system (an image being built, a test);
                systemctl is not called, the service is enabled by its symlink
  --no-start    do not call systemctl (enable, start, restart): images and tests
  --no-venv     do not create or update /opt/bias-mirror/.venv (you manage it)
  --coral       add the Coral Edge TPU drop-in (default: when libedgetpu.so.1 is installed)
  --no-coral    never add it
  --x11         add the X11 drop-in (a desktop session instead of the console)
  --uninstall   stop and remove the service and /opt/bias-mirror; the config, the password
                and the state (/var/lib/bias-mirror) stay
  --purge       with --uninstall: remove those too, and the user
EOF
}

while (($#)); do
  case $1 in
    --root) ROOT=${2:?--root needs a folder}; shift ;;
    --root=*) ROOT=${1#--root=} ;;
    --no-start) START=0 ;;
    --no-venv) VENV=0 ;;
    --coral) CORAL=1 ;;
    --no-coral) CORAL=0 ;;
    --x11) X11=1 ;;
    --uninstall) UNINSTALL=1 ;;
    --purge) PURGE=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "error: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
if ((PURGE && !UNINSTALL)); then
  echo "error: --purge only goes with --uninstall" >&2; exit 2
fi
if [[ $ROOT != / ]]; then
  [[ -d $ROOT ]] || { echo "error: --root $ROOT is not a folder; create it first" >&2; exit 2; }
  ROOT=$(cd "$ROOT" && pwd)
  START=0
  if ((VENV && !UNINSTALL)); then
    # A venv's scripts name its absolute path: one built at DIR/opt/... breaks once DIR is /.
    echo "note: no venv under --root; build it inside the image:"
    echo "      chroot $ROOT /opt/bias-mirror/systemd/install.sh --no-start"
    VENV=0
  fi
fi
if [[ $ROOT == / && $(id -u) != 0 ]]; then
  echo "error: run as root (sudo make install), or use --root DIR for a staging folder" >&2
  exit 2
fi
# systemctl only on a system that runs systemd (not in a container or a chroot).
if ((START)) && [[ ! -d /run/systemd/system ]]; then
  if ((UNINSTALL)); then
    echo "note: systemd is not running here: nothing to stop"
  else
    echo "note: systemd is not running here: the service is enabled but not started"
  fi
  START=0
fi

R=${ROOT%/}
APP=/opt/$NAME
ETC=/etc/$NAME
UNIT_DIR=/etc/systemd/system
UNIT=$UNIT_DIR/$NAME.service
DROPINS=$UNIT_DIR/$NAME.service.d
WANTS=$UNIT_DIR/multi-user.target.wants/$NAME.service
CHANGES=0
UNIT_CHANGED=0
APP_CHANGED=0

changed() { CHANGES=$((CHANGES + 1)); echo "  $*"; }

# install_file SRC DEST MODE: copy when the content or the mode differs.
install_file() {
  local src=$1 dest=$R$2 mode=$3
  if [[ -f $dest ]] && cmp -s "$src" "$dest" && [[ $(stat -c %a "$dest") == "${mode#0}" ]]; then
    return 1
  fi
  install -D -m "$mode" "$src" "$dest"
  changed "installed $2"
}

remove_path() {
  [[ $1 == /?* ]] || { echo "error: refusing to remove '$1'" >&2; exit 1; }
  if [[ -e $R$1 || -L $R$1 ]]; then
    rm -rf -- "$R$1"
    changed "removed $1"
  fi
}

systemctl_live() {
  if ((START)); then systemctl "$@"; fi
}

# -- user and groups ---------------------------------------------------------------------

have_group() { grep -q "^$1:" "$R/etc/group" 2>/dev/null; }
in_group() { grep -Eq "^$1:[^:]*:[^:]*:(.*,)?$USER_NAME(,.*)?$" "$R/etc/group" 2>/dev/null; }

ensure_user() {
  local prefix=()
  [[ $ROOT != / ]] && prefix=(--prefix "$ROOT")
  if [[ ! -f $R/etc/passwd || $(id -u) != 0 ]]; then
    echo "  note: user $USER_NAME not created (needs root and $R/etc/passwd)"
    return
  fi
  if ! grep -q "^$USER_NAME:" "$R/etc/passwd"; then
    useradd "${prefix[@]}" --system --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin --comment "Bias Mirror kiosk" "$USER_NAME"
    changed "created system user $USER_NAME"
  fi
  local missing=()
  for g in "${GROUPS_WANTED[@]}"; do
    if have_group "$g" && ! in_group "$g"; then missing+=("$g"); fi
  done
  if ((${#missing[@]})); then
    usermod "${prefix[@]}" --append --groups "$(IFS=,; echo "${missing[*]}")" "$USER_NAME"
    changed "added $USER_NAME to ${missing[*]}"
  fi
}

# -- the app and its venv ----------------------------------------------------------------

app_files() {
  # Relative paths of the files to ship, from git when this is a checkout (no stray files).
  if git -C "$SRC" rev-parse --git-dir >/dev/null 2>&1; then
    git -C "$SRC" ls-files -- "${APP_PARTS[@]}"
  else
    (cd "$SRC" && find "${APP_PARTS[@]}" -type f ! -path '*/__pycache__/*' 2>/dev/null)
  fi
}

sync_app() {
  local rel
  declare -A want=()
  while IFS= read -r rel; do
    [[ -f $SRC/$rel ]] || continue
    want[$rel]=1
    local mode=644
    [[ -x $SRC/$rel ]] && mode=755
    if install_file "$SRC/$rel" "$APP/$rel" "$mode" >/dev/null; then
      APP_CHANGED=$((APP_CHANGED + 1))
    fi
  done < <(app_files)
  # Files of an older version that this one no longer has.
  if [[ -d $R$APP ]]; then
    while IFS= read -r rel; do
      rel=${rel#./}
      if [[ -z ${want[$rel]:-} ]]; then
        rm -f -- "$R$APP/$rel"
        APP_CHANGED=$((APP_CHANGED + 1))
        CHANGES=$((CHANGES + 1))
      fi
    done < <(cd "$R$APP" && find . \( -path ./.venv -o -path ./build -o -name '*.egg-info' \
      -o -name __pycache__ \) -prune -o -type f -print)
    find "$R$APP" -mindepth 1 -type d -empty ! -path "$R$APP/.venv*" -delete
  fi
  if ((APP_CHANGED)); then echo "  updated $APP_CHANGED file(s) in $APP"; fi
}

ensure_venv() {
  local venv=$R$APP/.venv stamp=$R$APP/.venv/.bias-mirror-installed
  local want
  want=$(sha256sum "$R$APP/pyproject.toml" | cut -d' ' -f1)
  if [[ -f $stamp && $(cat "$stamp") == "$want" && -x $venv/bin/bias-mirror ]]; then
    return
  fi
  if [[ ! -x $venv/bin/python ]]; then
    "$PYTHON" -m venv "$venv" || {
      echo "error: cannot create a venv: apt-get install python3-venv, then run this again" >&2
      exit 1
    }
    changed "created $APP/.venv"
  fi
  # Editable: the app finds its assets next to installation/ (installation/paths.py).
  "$venv/bin/pip" install --quiet --disable-pip-version-check -e "$R$APP[runtime]"
  echo "$want" >"$stamp"
  changed "installed the runtime packages into $APP/.venv"
}

# -- config, credential, units ------------------------------------------------------------

ensure_config() {
  if [[ ! -f $R$ETC/kiosk.yaml ]]; then
    install -D -m 644 "$SRC/assets/config/default.yaml" "$R$ETC/kiosk.yaml"
    changed "created $ETC/kiosk.yaml from the defaults: set installation_id, source and mqtt"
  fi
  if [[ ! -f $R$ETC/mqtt_password ]]; then
    # LoadCredential= refuses to start the service without the file: an empty one means none.
    install -D -m 600 /dev/null "$R$ETC/mqtt_password"
    changed "created $ETC/mqtt_password (empty, 0600): write the broker password into it"
  fi
}

want_coral() {
  case $CORAL in
    1) return 0 ;;
    0) return 1 ;;
  esac
  compgen -G "$R/usr/lib/*/libedgetpu.so.1" >/dev/null ||
    compgen -G "$R/usr/lib/libedgetpu.so.1" >/dev/null
}

ensure_units() {
  if install_file "$SRC/systemd/$NAME.service" "$UNIT" 644; then UNIT_CHANGED=1; fi
  local name
  for name in coral x11; do
    local on=0
    if [[ $name == coral ]] && want_coral; then on=1; fi
    if [[ $name == x11 ]] && ((X11)); then on=1; fi
    if ((on)); then
      if install_file "$SRC/systemd/$NAME.service.d/$name.conf.example" "$DROPINS/$name.conf" 644
      then UNIT_CHANGED=1; fi
    fi
  done
  # Enabled = the WantedBy= symlink; systemctl makes it on a live system.
  if ((START)); then
    ((UNIT_CHANGED)) && systemctl daemon-reload
    if ! systemctl is-enabled --quiet "$NAME"; then
      systemctl enable --quiet "$NAME"
      changed "enabled $NAME"
    fi
  elif [[ ! -L $R$WANTS ]]; then
    mkdir -p "$(dirname "$R$WANTS")"
    ln -s "$UNIT" "$R$WANTS"
    changed "enabled $NAME (symlink in multi-user.target.wants)"
  fi
}

start_service() {
  ((START)) || return 0
  if ! systemctl is-active --quiet "$NAME"; then
    systemctl start "$NAME" || {
      echo "error: $NAME did not start; see: journalctl -u $NAME -n 50" >&2
      exit 1
    }
    changed "started $NAME"
  elif ((UNIT_CHANGED || APP_CHANGED)); then
    systemctl restart "$NAME"
    changed "restarted $NAME (new version)"
  fi
}

# -- uninstall ---------------------------------------------------------------------------

uninstall() {
  if ((START)) && [[ -f $UNIT ]]; then
    if systemctl is-enabled --quiet "$NAME" 2>/dev/null || systemctl is-active --quiet "$NAME"; then
      systemctl disable --now --quiet "$NAME"
      changed "stopped and disabled $NAME"
    fi
  fi
  remove_path "$WANTS"
  remove_path "$DROPINS"
  remove_path "$UNIT"
  systemctl_live daemon-reload
  remove_path "$APP"
  if ((PURGE)); then
    remove_path "$ETC"
    remove_path "/var/lib/$NAME"
    remove_path "/var/cache/$NAME"
    if grep -q "^$USER_NAME:" "$R/etc/passwd" 2>/dev/null; then
      local prefix=()
      [[ $ROOT != / ]] && prefix=(--prefix "$ROOT")
      userdel "${prefix[@]}" "$USER_NAME"
      changed "removed user $USER_NAME"
    fi
    # userdel keeps the user's own group where login.defs says so (or has no USERGROUPS_ENAB).
    if have_group "$USER_NAME"; then
      groupdel "${prefix[@]}" "$USER_NAME"
      changed "removed group $USER_NAME"
    fi
  elif [[ -d $R$ETC ]]; then
    echo "  kept $ETC (config, password) and /var/lib/$NAME (state); --purge removes them"
  fi
}

# -- main --------------------------------------------------------------------------------

where=""
[[ $ROOT != / ]] && where=" in $ROOT"
if ((UNINSTALL)); then
  echo "Uninstalling $NAME$where"
  uninstall
  if ((CHANGES)); then
    echo "done: $CHANGES change(s)"
  else
    echo "nothing to remove: $NAME is not installed"
  fi
  exit 0
fi

echo "Installing $NAME$where from $SRC"
ensure_user
sync_app
((VENV)) && ensure_venv
ensure_config
ensure_units
start_service
if ((CHANGES)); then
  echo "done: $CHANGES change(s)"
  if [[ $ROOT == / ]]; then
    echo "next: sudoedit $ETC/kiosk.yaml (installation_id, source, mqtt), then"
    echo "      sudo systemctl restart $NAME; journalctl -u $NAME -f shows what it does"
  fi
else
  echo "nothing to change: $NAME is installed and up to date"
fi
