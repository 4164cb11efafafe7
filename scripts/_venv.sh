# Sourced by scripts/serve and scripts/test: make (once) and refresh the project's virtual environment.
# MIXERD_VENV picks its folder (default .venv in the checkout); PYTHON picks the interpreter (>= 3.11).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV=${MIXERD_VENV:-.venv}
PYTHON=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "mixerd needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2; exit 1; }
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
mixerd_install() {  # mixerd_install [EXTRAS]: editable install of this checkout, quietly, when needed
  # An editable install sees code changes by itself; it is redone only when what pip acted on changes:
  # the packaging files, the extras asked for, or where the checkout is. A stamp in the venv records it.
  local extras=${1:-} stamp want
  stamp="$VENV/.mixerd-install${extras:+-$extras}"
  want="$(cat pyproject.toml setup.py; pwd)"
  want="$(printf '%s' "$want" | cksum)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".${extras:+[$extras]}"
  printf '%s\n' "$want" >"$stamp"
  # The plain install is part of the one with extras: a later ./scripts/serve need not redo it.
  [ -z "$extras" ] || printf '%s\n' "$want" >"$VENV/.mixerd-install"
}
