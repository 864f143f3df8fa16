#!/usr/bin/env bash
# Prepares the FCN-8s trainer on a Deep Learning AMI: clones or updates the
# project, creates a venv with TensorFlow's CUDA wheels and downloads the VGG16
# weights and the KITTI road data through the project's own helper.
#
# Runs as the login user, either once at first boot (cloud-init, see main.tf)
# or by hand over ssh:
#   REPO_URL=https://github.com/<you>/<repo>.git bash setup.sh
# Settings (environment): REPO_URL, PROJECT_DIR (default ~/fcn-8s),
# START_JUPYTER=1 to start Jupyter on 127.0.0.1:8888 (reach it through ssh -L).
set -euo pipefail

REPO_URL="${REPO_URL:-https://github.com/YOUR_GITHUB_USER/YOUR_REPO.git}"
PROJECT_DIR="${PROJECT_DIR:-$HOME/fcn-8s}"
START_JUPYTER="${START_JUPYTER:-0}"
LOG_FILE="$HOME/fcn-setup.log"
JUPYTER_LOG="$HOME/jupyter.log"

# Both logs end up holding the Jupyter token, so only the owner may read them.
touch "$LOG_FILE" "$JUPYTER_LOG"
chmod 600 "$LOG_FILE" "$JUPYTER_LOG"
exec > >(tee -a "$LOG_FILE") 2>&1
echo "== fcn setup started $(date -Is) as $(id -un)"

if [[ "$REPO_URL" == *YOUR_GITHUB_USER* ]]; then
  echo "REPO_URL still holds the placeholder; set it to your copy of the project (see infra/README.md)." >&2
  exit 1
fi

if [[ -d "$PROJECT_DIR/.git" ]]; then
  git -C "$PROJECT_DIR" pull --ff-only
else
  git clone "$REPO_URL" "$PROJECT_DIR"
fi
cd "$PROJECT_DIR"

# TensorFlow 2.21 needs Python >= 3.10; Amazon Linux 2's python3 is 3.7.
PYTHON=""
for candidate in python3.12 python3.11 python3.10 python3; do
  if command -v "$candidate" >/dev/null &&
    "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
    PYTHON="$candidate"
    break
  fi
done
if [[ -z "$PYTHON" ]]; then
  echo "No Python >= 3.10 found." >&2
  exit 1
fi

# Ubuntu ships venv support as a separate package.
if ! "$PYTHON" -c 'import ensurepip' 2>/dev/null && command -v apt-get >/dev/null; then
  sudo apt-get -o DPkg::Lock::Timeout=600 update -q
  sudo apt-get -o DPkg::Lock::Timeout=600 install -y -q "$PYTHON-venv"
fi

"$PYTHON" -m venv .venv
.venv/bin/python -m pip install --upgrade pip
.venv/bin/python -m pip install -r requirements.txt
.venv/bin/python -m pip install "tensorflow[and-cuda]==2.21.*"

.venv/bin/python -c "import helper; helper.maybe_download_pretrained_vgg('data'); helper.maybe_download_kitti('data')"
.venv/bin/python -c "import tensorflow as tf; print('GPUs:', tf.config.list_physical_devices('GPU'))"

if [[ "$START_JUPYTER" == 1 ]]; then
  .venv/bin/python -m pip install jupyterlab
  token="$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(32))')"
  setsid nohup .venv/bin/jupyter lab --no-browser \
    --ServerApp.ip=127.0.0.1 --ServerApp.port=8888 --ServerApp.port_retries=0 \
    --IdentityProvider.token="$token" >>"$JUPYTER_LOG" 2>&1 &
  echo "Jupyter: open the ssh tunnel, then http://127.0.0.1:8888/lab?token=$token"
fi

echo "== fcn setup finished $(date -Is); activate with: source $PROJECT_DIR/.venv/bin/activate"
