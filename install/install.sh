#!/usr/bin/env bash
# Install hf on this workstation and schedule its sweep.
#
#   install.sh [--cron | --systemd | --launchd | --no-schedule] [--every MIN]
#   install.sh --uninstall
#
# Installs with pipx or `uv tool` when present, else into a private virtual
# environment under the user's data dir with a link in ~/.local/bin. Then runs
# `hf install` with the chosen schedule (default: cron on Linux, launchd on
# macOS). Idempotent: running it again upgrades in place and keeps one schedule.
#
# Environment:
#   HF_SOURCE          what to install (default: hf-fanout from the package index;
#                      a local checkout path works too)
#   HF_INSTALL_METHOD  pipx | uv | venv (default: the first available, in that order)
#   HF_PYTHON          the Python for the private venv (default: python3)
#   HF_VENV_ARGS       extra arguments for `python -m venv`
#   HF_PIP_ARGS        extra arguments for `pip install`
set -euo pipefail

say() { printf 'hf-install: %s\n' "$*"; }
die() { printf 'hf-install: error: %s\n' "$*" >&2; exit 1; }

schedule=""
every=1
uninstall=0
while [ $# -gt 0 ]; do
  case "$1" in
    --cron) schedule=cron ;;
    --systemd) schedule=systemd ;;
    --launchd) schedule=launchd ;;
    --no-schedule) schedule=none ;;
    --every) shift; every="${1:?--every needs minutes}" ;;
    --uninstall) uninstall=1 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
  shift
done

data_dir="${XDG_DATA_HOME:-$HOME/.local/share}/hf"
venv="$data_dir/venv"
bin_dir="$HOME/.local/bin"
method_file="$data_dir/install-method"
source_spec="${HF_SOURCE:-hf-fanout}"

if [ -z "$schedule" ]; then
  if [ "$(uname -s)" = Darwin ]; then schedule=launchd; else schedule=cron; fi
fi

pick_method() {
  if [ -n "${HF_INSTALL_METHOD:-}" ]; then echo "$HF_INSTALL_METHOD"; return; fi
  if command -v pipx >/dev/null 2>&1; then echo pipx; return; fi
  if command -v uv >/dev/null 2>&1; then echo uv; return; fi
  echo venv
}

hf_path() {
  case "$1" in
    venv) echo "$bin_dir/hf" ;;
    *) command -v hf-fanout || echo "$bin_dir/hf-fanout" ;;
  esac
}

if [ "$uninstall" = 1 ]; then
  method="$(cat "$method_file" 2>/dev/null || pick_method)"
  hf="$(hf_path "$method")"
  if [ -x "$hf" ]; then
    "$hf" uninstall && say "removed the sweep schedule"
  else
    say "hf is not installed at $hf; no schedule to remove"
  fi
  case "$method" in
    pipx) pipx uninstall hf-fanout >/dev/null 2>&1 && say "pipx: uninstalled hf-fanout" || true ;;
    uv) uv tool uninstall hf-fanout >/dev/null 2>&1 && say "uv: uninstalled hf-fanout" || true ;;
    venv)
      for link in "$bin_dir/hf" "$bin_dir/hf-fanout"; do
        if [ -L "$link" ] && [ "$(readlink "$link")" = "$venv/bin/$(basename "$link")" ]; then
          rm -f "$link" && say "removed $link"
        fi
      done
      if [ -d "$venv" ]; then rm -rf "$venv" && say "removed $venv"; fi
      ;;
  esac
  rm -f "$method_file"
  rmdir "$data_dir" 2>/dev/null || true
  say "done: hf is uninstalled (your repositories and their hf state are untouched)"
  exit 0
fi

method="$(pick_method)"
mkdir -p "$data_dir" "$bin_dir"
case "$method" in
  pipx)
    say "installing $source_spec with pipx"
    pipx install --force "$source_spec" >/dev/null
    ;;
  uv)
    say "installing $source_spec with uv tool"
    uv tool install --force "$source_spec" >/dev/null
    ;;
  venv)
    python="${HF_PYTHON:-python3}"
    if [ ! -x "$venv/bin/python" ]; then
      say "creating a private virtual environment at $venv"
      # shellcheck disable=SC2086
      "$python" -m venv ${HF_VENV_ARGS:-} "$venv"
    else
      say "reusing the virtual environment at $venv"
    fi
    say "installing $source_spec into it"
    # shellcheck disable=SC2086
    "$venv/bin/python" -m pip install --quiet --upgrade ${HF_PIP_ARGS:-} "$source_spec"
    for name in hf hf-fanout; do
      ln -sfn "$venv/bin/$name" "$bin_dir/$name"
    done
    say "linked $bin_dir/hf and $bin_dir/hf-fanout"
    ;;
  *) die "unknown HF_INSTALL_METHOD $method (pipx, uv or venv)" ;;
esac
echo "$method" > "$method_file"

hf="$(hf_path "$method")"
"$hf" --version >/dev/null || die "the installed hf does not run ($hf)"
if [ "$schedule" != none ]; then
  "$hf" install "--$schedule" --every "$every"
fi
case ":$PATH:" in
  *":$bin_dir:"*) ;;
  *) say "note: add $bin_dir to your PATH" ;;
esac
say "done: $("$hf" --version) via $method; schedule: $schedule"
