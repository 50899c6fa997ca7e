"""Entity recall (issue 13, point 3): other programs' commands, flags outside
usage lines, configuration-file keys, and the labelled recall sample."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pipelines.extract import extract_document
from pipelines.extract.evaluation import evaluate
from wekadocs.embedder import TokenCounter
from wekadocs.model import Extraction, ParsedDocument

Parse = Callable[..., ParsedDocument]
DATA = Path(__file__).resolve().parents[1] / "data"
TYPES = ("Command", "Parameter", "Configuration", "Error")

SHELL_PAGE = """# Mount a filesystem

Mount it:

```
mount -t wekafs backend-1/fs1 /mnt/weka
```

Check the kernel setting with `sysctl -w net.ipv4.conf.all.arp_filter=1`, write a test file
with `dd if=/dev/zero of=/mnt/weka/f bs=1M count=10`, then install:

```bash
curl -sSL https://get.example.io/install | sudo sh
./install.sh --no-start
```

```
$ kubectl -n kube-system get pods
NAME        READY   STATUS
csi-node    1/1     Running
# list the pods above
```

Point the CLI elsewhere with `export WEKA_HOST=backend-1` and run
`weka fs create fs1 default 1TiB --encrypted --auth-required yes`.

The `mount` command and the `git` package are named here, not run.
"""

CONFIG_PAGE = """# Configure

Add these lines to `slurm.conf`:

```
TaskPlugin=task/affinity,task/cgroup
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
```

The exporter reads its settings from a YAML file:

```yaml
cluster:
  hosts: backend-1
  auth_token: /root/.weka/auth-token.json
  verify_cert: false
```

```python
client = connect(host="x")
```
"""

HELP_PAGE = """# Help

```
$ weka fs -h
Usage:
    weka fs [--name name]

Options:
   --name                  Filesystem name
   -H, --HOST              Specify the host. Alternatively, use the WEKA_HOST env variable
   -J, --json              Format output as JSON
```

**Options**

| Option | Description |
| --- | --- |
| `--stable` | List the stable resources. |
| `-C` | The container name. |
"""


def _names(extraction: Extraction, label: str) -> set[str]:
    return {e.name for e in extraction.entities if e.label == label}


def test_commands_of_other_programs_on_command_lines(parse: Parse) -> None:
    commands = _names(extract_document(parse(SHELL_PAGE)), "Command")
    assert commands == {"mount", "sysctl", "dd", "curl", "sh", "install.sh", "kubectl get", "weka fs create"}


def test_program_mentions_point_at_the_text(parse: Parse) -> None:
    doc = parse(SHELL_PAGE + CONFIG_PAGE)
    extraction = extract_document(doc)
    sections = {s.id: s for s in doc.sections}
    entities = {e.id: e for e in extraction.entities}
    spans = set()
    for mention in extraction.mentions:
        entity = entities[mention.entity_id]
        text = sections[mention.section_id].text[mention.start:mention.end]
        if entity.label in ("Parameter", "Configuration"):
            assert text == entity.name
        elif entity.label == "Command":
            # `kubectl -n x get`: the span covers the program, the name adds its sub-command
            assert text == entity.name or text == entity.name.split()[0]
            spans.add(text)
    assert {"mount", "install.sh", "kubectl"} <= spans
    assert extract_document(parse(SHELL_PAGE)) == extract_document(parse(SHELL_PAGE))


def test_flags_of_examples_and_other_programs_are_parameters(parse: Parse) -> None:
    extraction = extract_document(parse(SHELL_PAGE))
    params = {(dict(e.props)["command"], e.name) for e in extraction.entities if e.label == "Parameter"}
    assert params == {("install.sh", "no-start"), ("weka fs create", "encrypted"),
                      ("weka fs create", "auth-required")}
    assert len([r for r in extraction.relations if r.type == "HAS_PARAMETER"]) == 3


def test_settings_on_command_lines_and_env_vars(parse: Parse) -> None:
    # `dd`'s operands are settings of a command line, short as they are
    assert _names(extract_document(parse(SHELL_PAGE)), "Configuration") == {
        "net.ipv4.conf.all.arp_filter", "if", "of", "bs", "count", "WEKA_HOST"}


def test_keys_of_configuration_files(parse: Parse) -> None:
    keys = _names(extract_document(parse(CONFIG_PAGE)), "Configuration")
    # `cluster:` opens a map and holds no value; the Python block is a program
    assert keys == {"TaskPlugin", "SelectType", "SelectTypeParameters", "hosts", "auth_token", "verify_cert"}


def test_help_output_and_option_tables(parse: Parse) -> None:
    extraction = extract_document(parse(HELP_PAGE))
    assert _names(extraction, "Parameter") == {"name", "HOST", "json", "stable"}
    assert _names(extraction, "Configuration") == {"WEKA_HOST"}


def test_recall_on_the_tuning_sample(corpus_root: Path, count_tokens: TokenCounter) -> None:
    """Floors just under the figures reached on the tuning part (README's
    "Recall sample"; perf/eval_extraction.py prints them): before this work,
    recall was Command 0.64, Parameter 0.53, Configuration 0.67."""
    scores = evaluate(corpus_root / "4.4", DATA / "recall_tuning.jsonl", DATA / "recall_sections.json",
                      count_tokens, part="tuning")
    for label in TYPES:
        score = scores[label]
        assert score.recall >= 0.95, (label, score.recall, score.missed)
        assert score.precision >= 0.95, (label, score.precision, score.false_positives)


def test_recall_on_the_held_out_sample(corpus_root: Path, count_tokens: TokenCounter) -> None:
    """The held-out part was scored once, after tuning (Command 1.00/0.96,
    Parameter and Configuration 1.00/1.00; it holds no Error): a floor under
    those figures, so later changes cannot lose them unnoticed."""
    scores = evaluate(corpus_root / "4.4", DATA / "recall_heldout.jsonl", DATA / "recall_sections.json",
                      count_tokens, part="heldout")
    for label in TYPES:
        score = scores[label]
        assert score.recall >= 0.95 and score.precision >= 0.95, (label, score.missed, score.false_positives)
