"""Committed credentials: each rule found and not over-found, over a real git tree, masked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gitrepos import make_repo
from shipyard.analysis.interface import Target
from shipyard.analysis.secrets import SecretScanner, entropy, mask, scan_text, tracked_files
from shipyard.config.schema import SecretsConfig

# Built from parts, so that this file itself holds no secret-shaped string for a scanner.
AWS_ID = "AKIA" + "Q3EGRIJ4KZ7W2XVN"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYzq8Kx3Lp2V"  # 40 characters
GITHUB = "ghp_" + "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dE3fG5"
GITHUB_PAT = "github_pat_" + "11ABCDEFG0" + "x" * 72
GITLAB = "glpat-" + "Xy9zAb3Cd5Ef7Gh1Ij3K"
SLACK = "xoxb-" + "1234567890-0987654321-AbCdEfGhIjKlMnOp"
KEY_BODY = "MIIEowIBAAKCAQEA7bq3Zt9m" + "Q" * 60
PRIVATE_KEY = (
    f"-----BEGIN RSA PRIVATE KEY-----\n{KEY_BODY}\n{'A' * 64}\n-----END RSA PRIVATE KEY-----\n"
)
PASSWORD = "s3cr3t-Pa55w0rd!"


def ids(text: str, name: str = "config/settings.yaml") -> list[str]:
    return [f.id for f in scan_text(name, text)]


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        (f"aws_access_key_id = {AWS_ID}\n", "secret-aws-access-key-id"),
        (f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}\n", "secret-aws-secret-access-key"),
        (PRIVATE_KEY, "secret-private-key"),
        (f"token: {GITHUB}\n", "secret-github-token"),
        (f"x = '{GITHUB_PAT}'\n", "secret-github-token"),
        (f"GITLAB={GITLAB}\n", "secret-gitlab-token"),
        (f"slack: {SLACK}\n", "secret-slack-token"),
    ],
)
def test_shaped_secrets_are_found_in_any_text_file(text: str, rule: str) -> None:
    assert rule in ids(text, "notes/anything.md")
    assert rule in ids(text, "app/settings.py")


@pytest.mark.parametrize(
    "text",
    [
        "AKIAEXAMPLE\n",  # too short for a key id
        "prefix_AKIAQ3EGRIJ4KZ7W2XVNX\n",  # part of a longer word
        "-----BEGIN RSA PRIVATE KEY-----\n",  # a parser's constant, no key body
        "-----BEGIN PUBLIC KEY-----\n" + "A" * 80 + "\n",
        "ghp_short\n",
        "xoxb-\n",
    ],
)
def test_shaped_rules_do_not_fire_on_look_alikes(text: str) -> None:
    assert ids(text, "notes/anything.md") == []


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("config/prod.yaml", f"database:\n  password: {PASSWORD}\n"),
        ("config/prod.yaml", f'db_password: "{PASSWORD}"  # rotate me\n'),
        (".env", f"export DB_PASSWORD={PASSWORD}\n"),
        (".env.production", f"API_KEY={PASSWORD}\n"),
        ("settings.ini", f"[db]\npasswd = {PASSWORD}\n"),
        ("pyproject.toml", f'[tool.x]\nclient_secret = "{PASSWORD}"\n'),
        ("app.json", json.dumps({"service": {"apiKey": PASSWORD}}, indent=2)),
        (".pypirc", f"[pypi]\nusername = me\npassword = {PASSWORD}\n"),
        ("conf/app.properties", f"mail.smtp.password={PASSWORD}\n"),
    ],
)
def test_passwords_in_config_files(name: str, text: str) -> None:
    assert ids(text, name) == ["secret-password"]


@pytest.mark.parametrize(
    "text",
    [
        "password: ${DB_PASSWORD}\n",
        "password: '{{ vault.db }}'\n",
        "password: <your password here>\n",
        "password: changeme\n",
        "password: example-password\n",
        "password: null\n",
        "password: aaaaaaaa\n",  # too uniform to be a secret
        "password: abc\n",  # too short
        "password_file: /run/secrets/db\n",  # where the secret is, not the secret
        "token_url: https://auth.example.com/token\n",
        "tokenizer: bert-base-uncased\n",  # a word that only contains 'token'
        "password: !vault |\n",
        "password: *default_password\n",
        "secret_name: prod-db-credentials\n",
        "author: Ada Lovelace\n",
    ],
)
def test_the_generic_rule_skips_placeholders_and_references(text: str) -> None:
    assert ids(text, "config/settings.yaml") == []


def test_passwords_in_code_are_banditss_not_this_rules() -> None:
    assert ids(f'PASSWORD = "{PASSWORD}"\n', "app/settings.py") == []


def test_a_finding_is_masked_and_located() -> None:
    text = f"# deploy settings\nregion: eu-west-1\naws_secret_access_key: {AWS_SECRET}\n"
    [finding] = scan_text("deploy/aws.yaml", text)  # the generic rule defers to the shaped one
    assert finding.id == "secret-aws-secret-access-key" and finding.severity == "critical"
    assert (finding.file, finding.line, finding.location) == (
        "deploy/aws.yaml",
        3,
        "deploy/aws.yaml:3",
    )
    assert finding.title == "AWS secret access key wJal****"
    assert finding.aliases == ("secret-aws-secret-access-key:deploy/aws.yaml",)
    assert "rotate" in finding.fix
    assert AWS_SECRET not in json.dumps(finding.to_dict())
    assert mask(GITHUB) == "ghp_****"


def test_entropy() -> None:
    assert entropy("aaaa") == 0
    assert entropy("abcd") == 2
    assert entropy(PASSWORD) > 3


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    files = {
        "config/prod.yaml": f"password: {PASSWORD}\n",
        "keys/deploy.pem": PRIVATE_KEY,
        "tests/fixtures/fake.env": f"API_KEY={PASSWORD}\n",
        "app/main.py": "print('hello')\n",
        "data/blob.bin": "\0" + AWS_ID,  # binary: not read
    }
    repo = make_repo(tmp_path / "repo", files)
    (repo / ".env").write_text(f"GITHUB_TOKEN={GITHUB}\n")  # never committed
    return repo


def test_only_tracked_files_are_searched(repo: Path) -> None:
    assert ".env" not in tracked_files(repo)
    result = SecretScanner(SecretsConfig()).scan(Target(repo))
    assert [(f.id, f.location) for f in result.findings] == [
        ("secret-password", "config/prod.yaml:1"),
        ("secret-private-key", "keys/deploy.pem:2"),
        ("secret-password", "tests/fixtures/fake.env:1"),
    ]
    assert result.scope == "5 tracked files"
    dumped = json.dumps([f.to_dict() for f in result.findings])
    assert PASSWORD not in dumped and KEY_BODY[:20] not in dumped


def test_exclude_and_a_tree_outside_git(repo: Path, tmp_path: Path) -> None:
    result = SecretScanner(SecretsConfig(exclude=["tests", "keys/*.pem"])).scan(Target(repo))
    assert [f.location for f in result.findings] == ["config/prod.yaml:1"]

    plain = tmp_path / "plain"
    (plain / ".venv" / "lib").mkdir(parents=True)
    (plain / ".venv" / "lib" / "x.env").write_text(f"API_KEY={PASSWORD}\n")  # a virtualenv
    (plain / ".env").write_text(f"GITHUB_TOKEN={GITHUB}\n")
    assert tracked_files(plain) == [".env"]
    found = SecretScanner(SecretsConfig()).scan(Target(plain)).findings
    assert [(f.id, f.file) for f in found] == [("secret-github-token", ".env")]


DB_PASSWORD = "s3cr3t" + "Pa55"


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("config/prod.yaml", f"url: postgresql://app:{DB_PASSWORD}@db.internal/app\n"),
        (".env", f"DATABASE_URL=mysql://root:{DB_PASSWORD}@localhost:3306/shop\n"),
        ("app/db.py", f'ENGINE = "postgresql+psycopg://app:{DB_PASSWORD}@db:5432/app"\n'),
        ("shipyard.yaml", f"    database: postgres://u:{DB_PASSWORD}@10.0.0.5/x?sslmode=require\n"),
        ("README.md", f"mongodb+srv://reader:{DB_PASSWORD}@cluster0.example.net/ml\n"),
    ],
)
def test_a_password_inside_a_database_url_is_found_in_any_file(name: str, text: str) -> None:
    [finding] = scan_text(name, text)
    assert finding.id == "secret-database-url"
    assert finding.title == "password in a database URL s3cr****"
    assert "environment variable such as SHIPYARD_DATABASE_URL" in finding.fix
    assert DB_PASSWORD not in json.dumps(finding.to_dict())


@pytest.mark.parametrize(
    "text",
    [
        "url: postgresql://app:${DB_PASSWORD}@db/app\n",
        "url: postgresql://app:{password}@db/app\n",
        "url: postgresql+psycopg://app:<password>@db/app\n",
        "url: mysql://root:****@db/shop\n",
        "url: mysql://root:@db/shop\n",  # empty
        "url: postgresql://app@db/app\n",  # no password at all
        "url: postgresql://db.internal:5432/app\n",  # a port, not a password
        "url: postgresql://app:%(password)s@db/app\n",
        "url: sqlite:///{state}/app.db\n",
        "url: https://user:token@example.com/\n",  # not a database URL: not this rule's
    ],
)
def test_a_database_url_without_a_real_password_is_not_a_finding(text: str) -> None:
    assert "secret-database-url" not in ids(text)
