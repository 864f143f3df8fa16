"""Offline checks for infra/: terraform fmt/validate/test, checkov and setup.sh.

Nothing here reaches the network. Terraform installs the AWS provider from a
local plugin directory, runs in a temporary copy of infra/ and tests against a
mocked provider; checkov skips its downloads. A check whose tool or provider
copy is missing is skipped with the reason.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

INFRA = Path(__file__).resolve().parent
SETUP_SH = INFRA / "setup.sh"
PLUGIN_ROOTS = ("/opt/tf-plugins", "~/.terraform.d/plugins", "/usr/share/terraform/plugins")
AWS_PROVIDER = Path("registry.terraform.io/hashicorp/aws")
RUN_NAMES = [
    name
    for test_file in sorted((INFRA / "tests").glob("*.tftest.hcl"))
    for name in re.findall(r'^run "([^"]+)"', test_file.read_text(), re.MULTILINE)
]
REQUIRED_RUNS = {
    "config_defaults_to_p3_2xlarge",
    "ssh_open_to_allowed_cidr_only",
    "jupyter_closed_by_default",
    "jupyter_opt_in_opens_8888_to_allowed_cidr_only",
    "imdsv2_required",
    "root_volume_encrypted_gp3",
    "on_demand_by_default",
    "spot_is_one_time",
    "rejects_ipv4_anywhere",
    "rejects_ipv6_anywhere",
}


def run(cmd, cwd=None, env=None):
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    result.output = result.stdout + result.stderr
    return result


def find_plugin_dir():
    roots = [os.environ["TF_PLUGIN_DIR"]] if os.environ.get("TF_PLUGIN_DIR") else PLUGIN_ROOTS
    for root in (Path(r).expanduser() for r in roots):
        if (root / AWS_PROVIDER).is_dir():
            return root
    pytest.skip(f"no local copy of {AWS_PROVIDER} under {', '.join(roots)} (set TF_PLUGIN_DIR)")


@pytest.fixture(scope="module")
def terraform():
    binary = shutil.which("terraform")
    if binary is None:
        pytest.skip("terraform binary not found on PATH")
    return binary


@pytest.fixture(scope="module")
def tf_env(tmp_path_factory):
    """Environment without the caller's TF_* settings, with an empty CLI config."""
    cli_config = tmp_path_factory.mktemp("tfcli") / "terraformrc"
    cli_config.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    env.update(
        TF_CLI_CONFIG_FILE=str(cli_config),
        CHECKPOINT_DISABLE="1",
        TF_IN_AUTOMATION="1",
        TF_INPUT="0",
    )
    return env


@pytest.fixture(scope="module")
def workdir(terraform, tf_env, tmp_path_factory):
    """An initialised copy of infra/, so nothing is written into the repository."""
    plugin_dir = find_plugin_dir()
    copy = tmp_path_factory.mktemp("infra") / "infra"
    shutil.copytree(
        INFRA,
        copy,
        ignore=shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "*.tfstate*", "__pycache__"),
    )
    init = run(
        [terraform, "init", "-backend=false", f"-plugin-dir={plugin_dir}", "-input=false", "-no-color"],
        cwd=copy,
        env=tf_env,
    )
    assert init.returncode == 0, init.output
    return copy


def test_fmt(terraform, tf_env):
    result = run([terraform, "fmt", "-check", "-recursive", "-diff", "-no-color", str(INFRA)], env=tf_env)
    assert result.returncode == 0, result.output


def test_validate(terraform, tf_env, workdir):
    result = run([terraform, "validate", "-no-color"], cwd=workdir, env=tf_env)
    assert result.returncode == 0, result.output
    assert "The configuration is valid" in result.output


def test_required_checks_exist():
    assert REQUIRED_RUNS <= set(RUN_NAMES), f"missing run blocks: {REQUIRED_RUNS - set(RUN_NAMES)}"


def test_terraform_test_passes(terraform, tf_env, workdir):
    result = run([terraform, "test", "-var-file=config.tfvars", "-no-color"], cwd=workdir, env=tf_env)
    assert result.returncode == 0, result.output
    assert f"{len(RUN_NAMES)} passed, 0 failed" in result.output, result.output
    for name in RUN_NAMES:
        assert f'run "{name}"... pass' in result.output, result.output


def test_terraform_test_catches_ssh_open_to_world(terraform, tf_env, workdir, tmp_path):
    """The suite has teeth: opening ssh to 0.0.0.0/0 in main.tf must fail it."""
    mutant = tmp_path / "infra"
    shutil.copytree(workdir, mutant, symlinks=True)
    main_tf = mutant / "main.tf"
    original = main_tf.read_text()
    mutated = original.replace("cidr_ipv4         = var.allowed_cidr", 'cidr_ipv4         = "0.0.0.0/0"', 1)
    assert mutated != original, "mutation target not found in main.tf"
    main_tf.write_text(mutated)

    result = run([terraform, "test", "-var-file=config.tfvars", "-no-color"], cwd=mutant, env=tf_env)
    assert result.returncode != 0, result.output
    assert 'run "ssh_open_to_allowed_cidr_only"... fail' in result.output, result.output


def test_checkov_reports_no_failures():
    checkov = os.environ.get("CHECKOV_BIN") or shutil.which("checkov")
    if not checkov:
        pytest.skip("checkov not found (set CHECKOV_BIN or put checkov on PATH)")
    env = dict(os.environ, BC_SKIP_MAPPING="TRUE")
    result = run(
        [checkov, "-d", str(INFRA), "--framework", "terraform", "--skip-download", "-o", "json"],
        env=env,
    )
    report = json.loads(result.stdout)
    summary = report["summary"]
    assert summary["parsing_errors"] == 0, result.output
    assert summary["passed"] > 0, result.output
    assert summary["failed"] == 0, json.dumps(report["results"]["failed_checks"], indent=2)
    for skipped in report["results"]["skipped_checks"]:
        reason = skipped["check_result"].get("suppress_comment", "")
        assert reason and reason != "No comment provided", f"{skipped['check_id']} skipped without a reason"
    assert result.returncode == 0, result.output


def test_setup_sh_syntax():
    result = run(["bash", "-n", str(SETUP_SH)])
    assert result.returncode == 0, result.output


def test_setup_sh_shellcheck():
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck not installed")
    result = run([shellcheck, str(SETUP_SH)])
    assert result.returncode == 0, result.output


def test_setup_sh_is_strict_and_keeps_jupyter_local():
    script = SETUP_SH.read_text()
    assert "set -euo pipefail" in script
    assert "--ServerApp.ip=127.0.0.1" in script
    assert not re.search(r"ServerApp\.ip=(0\.0\.0\.0|\*|'\*')", script)
