"""Offline stand-in for the get-pip bootstrap script that ansible-test downloads.

ansible-test (--venv) creates an empty virtual environment and runs
``~/.ansible/test/cache/get_pip_<version>.py <pip options> pip==<version> --no-setuptools --no-wheel``
in it. The real script comes from a host this machine cannot reach; this one
installs the pip bundled with Python (ensurepip), then lets that pip fetch the
requested packages from PyPI. Installed by .ci/sanity.sh.
"""

import subprocess
import sys

# ensurepip bundles pip only, which is what both flags ask for.
ONLY_GET_PIP_FLAGS = {"--no-setuptools", "--no-wheel"}

# A child process, not ensurepip.bootstrap(): that sets PIP_CONFIG_FILE=/dev/null
# in this process, and the install below needs the machine's pip config (index,
# CA bundle).
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
subprocess.check_call(
    [sys.executable, "-m", "pip", "install", *[arg for arg in sys.argv[1:] if arg not in ONLY_GET_PIP_FLAGS]]
)
