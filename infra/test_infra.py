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
TEST_FILE_OF_RUN = {
    name: test_file
    for test_file in sorted((INFRA / "tests").glob("*.tftest.hcl"))
    for name in re.findall(r'^run "([^"]+)"', test_file.read_text(), re.MULTILINE)
}
RUN_NAMES = list(TEST_FILE_OF_RUN)
PROBE_FILE = "tests/probe.tftest.hcl"
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
    "one_node_has_no_cluster",
    "three_nodes_form_one_cluster",
    "rejects_non_gpu_instance_type",
    "rejects_zero_instances",
    "rejects_privileged_worker_port",
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


def copy_with_probe(workdir, destination, test_file, run_block):
    """Copy the initialised infra/ to destination with PROBE_FILE: test_file's mock provider and variables (all
    before its first run block) followed by run_block alone, so that `terraform test -filter` runs only that."""
    shutil.copytree(workdir, destination, symlinks=True)
    preamble = test_file.read_text().split('\nrun "', 1)[0]
    (destination / PROBE_FILE).write_text(f"{preamble}\n{run_block}")
    return destination


def run_probe(terraform, tf_env, probe_dir):
    return run(
        [terraform, "test", "-var-file=config.tfvars", f"-filter={PROBE_FILE}", "-no-color"],
        cwd=probe_dir,
        env=tf_env,
    )


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


# (file, text in it, replacement, the run that must then fail): each breaks one promise of the tests.
MUTATIONS = {
    "ssh_open_to_world": (
        "main.tf",
        "cidr_ipv4         = var.allowed_cidr",
        'cidr_ipv4         = "0.0.0.0/0"',
        "ssh_open_to_allowed_cidr_only",
    ),
    "worker_port_open_to_world": (
        "main.tf",
        "referenced_security_group_id = aws_security_group.trainer.id",
        'cidr_ipv4                    = "0.0.0.0/0"',
        "three_nodes_form_one_cluster",
    ),
    "placement_group_spread": (
        "main.tf",
        'strategy = "cluster"',
        'strategy = "spread"',
        "three_nodes_form_one_cluster",
    ),
    "every_node_chief": (
        "main.tf",
        'task    = { type = "worker", index = index }',
        'task    = { type = "worker", index = 0 }',
        "three_nodes_form_one_cluster",
    ),
    "tf_config_on_one_node": (
        "main.tf",
        "local.multi_node ? \"TF_CONFIG='${local.tf_configs[index]}'\" : \"\"",
        "\"TF_CONFIG='${local.tf_configs[index]}'\"",
        "one_node_has_no_cluster",
    ),
    "setup_clones_elsewhere": (
        "main.tf",
        '"PROJECT_DIR=${local.project_dir}", ',
        "",
        "one_node_has_no_cluster",
    ),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_terraform_test_catches_mutation(terraform, tf_env, workdir, tmp_path, mutation):
    """The suite has teeth: each mutation of the configuration must fail the run that guards it."""
    file_name, target, replacement, guarding_run = MUTATIONS[mutation]
    test_file = TEST_FILE_OF_RUN[guarding_run]
    run_block = re.search(rf'^run "{guarding_run}" {{\n.*?^}}\n', test_file.read_text(), re.MULTILINE | re.DOTALL)
    assert run_block, f"run \"{guarding_run}\" not found in {test_file}"
    mutant = copy_with_probe(workdir, tmp_path / "infra", test_file, run_block.group(0))
    mutated_file = mutant / file_name
    original = mutated_file.read_text()
    mutated = original.replace(target, replacement, 1)
    assert mutated != original, f"mutation target not found in {file_name}: {target}"
    mutated_file.write_text(mutated)

    result = run_probe(terraform, tf_env, mutant)
    assert result.returncode != 0, result.output
    assert f'run "{guarding_run}"... fail' in result.output, result.output


# A refused value and words its error must contain: what is accepted.
REFUSED_VALUES = {
    "instance_type": ('"t3.micro"', ["instance_type must be one of", "p3.8xlarge (4 V100)", "p4d.24xlarge (8 A100)"]),
    "instance_count": ("0", ["instance_count must be a whole number of nodes from 1 to 16"]),
    "worker_port": ("80", ["worker_port must be a whole number from 1024 to 65535"]),
}


@pytest.mark.parametrize("variable", sorted(REFUSED_VALUES))
def test_refused_value_names_what_is_accepted(terraform, tf_env, workdir, tmp_path, variable):
    """A refused value fails the plan with an error that says what is accepted."""
    value, expected_words = REFUSED_VALUES[variable]
    run_block = f'run "probe" {{\n  command = plan\n\n  variables {{\n    {variable} = {value}\n  }}\n}}\n'
    probe = copy_with_probe(workdir, tmp_path / "infra", INFRA / "tests" / "nodes.tftest.hcl", run_block)
    result = run_probe(terraform, tf_env, probe)
    assert result.returncode != 0, result.output
    assert "Invalid value for variable" in result.output, result.output
    unwrapped = " ".join(result.output.split())
    for words in expected_words:
        assert words in unwrapped, result.output


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
