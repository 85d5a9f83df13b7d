"""`shipyard artifacts ...` and `shipyard promote`: the artifact repositories."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shipyard.cli.common import (
    JsonOption,
    ProjectOption,
    ServerOption,
    StateOption,
    adapters,
    console,
    err,
    services,
    split_ref,
)
from shipyard.cli.render import print_json
from shipyard.domain import DEV_REPOSITORY, RELEASE_REPOSITORY
from shipyard.errors import InvalidInput

if TYPE_CHECKING:  # the CLI imports its subsystems lazily, to start fast
    from shipyard.services.artifacts import ArtifactView
    from shipyard.store.models import Repository

artifacts_app = typer.Typer(
    help="The artifact repositories (`dev`, `release`).", no_args_is_help=False
)

KeyOption = Annotated[
    Path | None,
    typer.Option(
        "--key",
        help="Signing key file (default: $SHIPYARD_SIGNING_KEY, else <state>/keys/signing.key).",
    ),
]
RepositoryOption = Annotated[
    str | None,
    typer.Option("--repository", "--repo", help="Only this repository (dev, release, ...)."),
]


@artifacts_app.callback(invoke_without_command=True)
def artifacts(
    ctx: typer.Context,
    repo: RepositoryOption = None,
    project: ProjectOption = None,
    state: StateOption = None,
    server: ServerOption = None,
    as_json: JsonOption = False,
) -> None:
    """List artifacts and the repositories that hold them."""
    if ctx.invoked_subcommand is not None:
        return
    _print_listing(services(state, server).artifacts.search(name=project, repository=repo), as_json)


@artifacts_app.command("search")
def artifacts_search(
    name: Annotated[str | None, typer.Argument(help="Artifact (project) name.")] = None,
    version: Annotated[
        str | None,
        typer.Option("--version", "-v", help="Run-number range such as '>=3,<7', or a version."),
    ] = None,
    sha: Annotated[str | None, typer.Option("--sha", help="Git commit sha prefix.")] = None,
    prop: Annotated[
        list[str] | None,
        typer.Option("--property", "-P", help="key=value that must match (repeatable)."),
    ] = None,
    repo: RepositoryOption = None,
    state: StateOption = None,
    server: ServerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Find artifacts by name, version range, git sha, property and repository."""
    from shipyard.artifacts.properties import parse_assignment

    properties = dict(parse_assignment(p) for p in prop or [])
    found = services(state, server).artifacts.search(name, repo, version, properties, sha=sha)
    _print_listing(found, as_json)


def _print_listing(found: list[ArtifactView], as_json: bool) -> None:
    if as_json:
        print_json(console, [_artifact_dict(art) for art in found])
        return
    from shipyard.cli.render import make_table

    columns = ("name:version", "digest", "size", "repositories", "git", "created")
    table = make_table(*columns, typed=("name:version", "digest", "git"), title="artifacts")
    for art in found:
        table.add_row(
            f"{art.name}:{art.version}",
            art.digest[:19],
            f"{art.size:,}",
            ", ".join(art.repositories),
            art.properties.get("git.sha", "")[:10],
            art.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
    console.print(table)


@artifacts_app.command("show")
def artifacts_show(
    ref: Annotated[str, typer.Argument(help="NAME:VERSION")],
    state: StateOption = None,
    server: ServerOption = None,
    as_json: JsonOption = False,
    sbom: Annotated[
        bool, typer.Option("--sbom", help="Print the whole CycloneDX SBOM, not its summary.")
    ] = False,
) -> None:
    """An artifact's build-info (its SBOM summarised), properties, repositories, signatures and
    attestations."""
    name, version = split_ref(ref)
    detail = services(state, server).artifacts.show(name, version)
    if sbom:
        from shipyard.services.artifacts import sbom_document

        print_json(console, sbom_document(name, version, detail.build_info))
        return
    data = {
        **_artifact_dict(detail),
        "signatures": [_trust(s.key_id, s.verified) for s in detail.signatures],
        "attestations": [
            _trust(f"{a.subject} by {a.key_id}", a.verified) for a in detail.attestations
        ],
    }
    if as_json:
        print_json(console, data)
        return
    # One field a line, whole (a digest is longer than a narrow terminal: it soft-wraps there).
    console.print(f"[bold]{ref}[/]", highlight=False)
    for key in ("digest", "size", "repositories", "created_at", "signatures", "attestations"):
        value = data[key]
        shown = ", ".join(value) if isinstance(value, list) else str(value)
        console.print(f"{key:<14} {shown}", markup=False, highlight=False, soft_wrap=True)
    for key, value in detail.properties.items():
        console.print(f"{key:<14} {value}", style="cyan", markup=False, soft_wrap=True)
    document = detail.build_info.get("sbom")
    print_json(console, {k: v for k, v in detail.build_info.items() if k != "sbom"})
    if isinstance(document, dict):
        console.print(_sbom_words(ref, document), soft_wrap=True, highlight=False, markup=False)


def _sbom_words(ref: str, document: dict[str, Any]) -> str:
    """The SBOM in one sentence: its components and their licences, counted."""
    from shipyard.services.artifacts import SbomSummary

    summary = SbomSummary.of(document)
    licences = ", ".join(f"{c.licence} {c.components}" for c in summary.licences) or "none"
    return (
        f"sbom: CycloneDX {summary.spec_version}, {summary.components} components;"
        f" licences: {licences} (`shipyard artifacts show {ref} --sbom` prints it whole)"
    )


def _trust(text: str, verified: bool) -> str:
    return text if verified else f"{text} (NOT verified by a trusted key)"


@artifacts_app.command("set")
def artifacts_set(
    ref: Annotated[str, typer.Argument(help="NAME:VERSION")],
    assignments: Annotated[
        list[str] | None, typer.Argument(help="key=value pairs to set.", show_default=False)
    ] = None,
    unset: Annotated[
        list[str] | None, typer.Option("--unset", help="A key to remove (repeatable).")
    ] = None,
    state: StateOption = None,
    as_json: JsonOption = False,
) -> None:
    """Set or remove an artifact's properties (the stages' namespaces are read-only)."""
    from shipyard.artifacts.catalog import Catalog
    from shipyard.artifacts.properties import parse_assignment, user_key

    values = dict(parse_assignment(text) for text in assignments or [])
    for key in [*values, *(unset or [])]:
        user_key(key)
    if not values and not unset:
        raise InvalidInput("Nothing to change.", hint="Give key=value pairs or --unset KEY.")
    store = adapters(state).store
    artifact = store.get_artifact(*split_ref(ref))
    catalog = Catalog(store)
    catalog.set_properties(artifact, values)
    removed = catalog.unset_properties(artifact, unset or [])
    if as_json:
        print_json(console, {"ref": ref, "set": values, "removed": removed})
        return
    console.print(
        f"{ref}: set {', '.join(values) or 'nothing'}; removed {', '.join(removed) or 'nothing'}"
    )


@artifacts_app.command("repos")
def artifacts_repos(state: StateOption = None, as_json: JsonOption = False) -> None:
    """List repositories with their promotion and retention policies."""
    from shipyard.artifacts.catalog import Catalog
    from shipyard.artifacts.gc import format_age

    rows = Catalog(adapters(state).store).repositories()
    data = [_repository_dict(r) for r in rows]
    if as_json:
        print_json(console, data)
        return
    from shipyard.cli.render import make_table

    columns = ("name", "immutable", "requires passed", "skip allowed", "keep last", "max age")
    table = make_table(*columns, typed=("name",), title="repositories")
    for r in rows:
        table.add_row(
            r.name,
            "yes (signed)" if r.immutable else "no",
            ", ".join(r.require) or "-",
            ", ".join(r.allow_skipped) or "-",
            str(r.keep_last or "-"),
            format_age(r.max_age) or "-",
        )
    console.print(table)


def _repository_dict(row: Repository) -> dict[str, Any]:
    from shipyard.artifacts.gc import format_age

    return {
        "name": row.name,
        "immutable": row.immutable,
        "require": row.require,
        "allow_skipped": row.allow_skipped,
        "keep_last": row.keep_last,
        "max_age": format_age(row.max_age) or None,
    }


@artifacts_app.command("create-repo")
def artifacts_create_repo(
    name: Annotated[str, typer.Argument(help="Repository name.")],
    immutable: Annotated[
        bool, typer.Option("--immutable", help="Never overwritten or cleaned; promotion signs.")
    ] = False,
    state: StateOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add a repository (dev and release exist from the start)."""
    from shipyard.artifacts.catalog import Catalog
    from shipyard.artifacts.repository import validate_name

    row = Catalog(adapters(state, create=True).store).create_repository(
        validate_name(name), immutable=immutable
    )
    if as_json:
        print_json(console, _repository_dict(row))
        return
    console.print(f"repository {row.name} created{' (immutable)' if row.immutable else ''}")


def _stages(values: list[str] | None) -> list[str]:
    return [stage.strip() for value in values or [] for stage in value.split(",") if stage.strip()]


@artifacts_app.command("policy")
def artifacts_policy(
    repository: Annotated[str, typer.Argument(help="Repository name.")],
    keep_last: Annotated[
        int | None, typer.Option("--keep-last", help="Retention: keep the newest N per name.")
    ] = None,
    max_age: Annotated[
        str | None, typer.Option("--max-age", help="Retention: keep what is younger, e.g. 30d.")
    ] = None,
    no_retention: Annotated[
        bool, typer.Option("--no-retention", help="Keep everything (remove the retention).")
    ] = False,
    require: Annotated[
        list[str] | None, typer.Option("--require", help="Stage that must have passed (tightens).")
    ] = None,
    allow_skipped: Annotated[
        list[str] | None,
        typer.Option("--allow-skipped", help="Required stage that may be skipped (loosens)."),
    ] = None,
    disallow_skipped: Annotated[
        list[str] | None,
        typer.Option("--disallow-skipped", help="Withdraw a skip allowance (tightens)."),
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why; required to loosen, kept in the audit log.")
    ] = None,
    state: StateOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show or change a repository's promotion policy and retention."""
    from shipyard.artifacts.catalog import Catalog
    from shipyard.artifacts.gc import format_age, parse_age
    from shipyard.artifacts.policy import change_policy

    catalog = Catalog(adapters(state, create=True).store)
    row = catalog.repository(repository)
    if require or allow_skipped or disallow_skipped:
        change = change_policy(
            catalog.policy(repository),
            require=_stages(require),
            allow_skipped=_stages(allow_skipped),
            disallow_skipped=_stages(disallow_skipped),
        )
        row = catalog.set_policy(repository, change, reason)
        if change.loosened:
            err.print(
                f"[yellow]loosened:[/] {repository} now lets {', '.join(change.loosened)}"
                " be skipped (recorded in the audit log)"
            )
    if no_retention or keep_last is not None or max_age is not None:
        age = parse_age(max_age) if max_age is not None else None
        row = catalog.set_retention(repository, keep_last, age)
    if as_json:
        print_json(console, _repository_dict(row))
        return
    retention = " and ".join(
        part
        for part in (
            f"keep the newest {row.keep_last}" if row.keep_last else "",
            f"keep what is younger than {format_age(row.max_age)}" if row.max_age else "",
        )
        if part
    )
    console.print(
        f"{row.name}: {'immutable, signed' if row.immutable else 'mutable'};"
        f" requires passed: {', '.join(row.require) or 'nothing'};"
        f" skip allowed: {', '.join(row.allow_skipped) or 'none'};"
        f" retention: {retention or 'keep everything'}"
    )


key_app = typer.Typer(help="This instance's signing key and the keys it trusts.")


@key_app.callback(invoke_without_command=True)
def artifacts_key(ctx: typer.Context, key: KeyOption = None, state: StateOption = None) -> None:
    """Print the public signing key (PEM) and its id; created on first use."""
    if ctx.invoked_subcommand is not None:
        return
    from shipyard.artifacts.attestations import own_signer
    from shipyard.artifacts.catalog import Catalog
    from shipyard.artifacts.signing import KeyFile, key_id, public_pem

    a = adapters(state, create=True)
    keys = KeyFile.resolve(a.state.signing_key, key)
    public = own_signer(Catalog(a.store), keys).public if keys.create else keys.trusted()
    err.print(f"key {key_id(public)} at {keys.path}")
    console.print(public_pem(public), end="", highlight=False)


@key_app.command("list")
def artifacts_key_list(
    key: KeyOption = None, state: StateOption = None, as_json: JsonOption = False
) -> None:
    """List the keys whose signatures count here: this instance's and the trusted ones."""
    from shipyard.artifacts.signing import KeyFile, key_id

    keys = KeyFile.resolve(adapters(state).state.signing_key, key)
    own = key_id(keys.trusted()) if keys.path.exists() else None
    if as_json:
        trusted = sorted(set(keys.trusted_keys()) - {own})
        print_json(console, {"own": own, "path": keys.path, "trusted": trusted})
        return
    console.print(f"{own or 'no key yet'}  this instance ({keys.path})", highlight=False)
    for ident in sorted(set(keys.trusted_keys()) - {own}):
        console.print(f"{ident}  trusted ({keys.trusted_dir})", highlight=False)


@key_app.command("trust")
def artifacts_key_trust(
    file: Annotated[Path, typer.Argument(help="A public key PEM (`shipyard artifacts key`).")],
    key: KeyOption = None,
    state: StateOption = None,
    as_json: JsonOption = False,
) -> None:
    """Trust another Shipyard's key: its signed stage results count here for promotion."""
    from shipyard.artifacts.keys import trust_key
    from shipyard.artifacts.signing import KeyFile

    keys = KeyFile.resolve(adapters(state, create=True).state.signing_key, key)
    trusted = trust_key(keys, file)
    if as_json:
        print_json(console, {"trusted": trusted, "dir": keys.trusted_dir})
        return
    console.print(f"trusting {trusted} (in {keys.trusted_dir})", highlight=False)


@key_app.command("rotate")
def artifacts_key_rotate(
    key: KeyOption = None, state: StateOption = None, as_json: JsonOption = False
) -> None:
    """Make a new signing key: verify every signature with the old one, re-sign with the new."""
    from dataclasses import asdict

    from shipyard.artifacts.catalog import Catalog
    from shipyard.artifacts.keys import rotate_key
    from shipyard.artifacts.signing import KeyFile

    a = adapters(state)
    done = rotate_key(Catalog(a.store), KeyFile.resolve(a.state.signing_key, key))
    if as_json:
        print_json(console, asdict(done))
        return
    console.print(
        f"rotated {done.old} -> {done.new}: {done.artifacts} artifact(s) re-signed;"
        f" the old key is kept at {done.retired}",
        highlight=False,
    )


@artifacts_app.command("gc")
def artifacts_gc(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would go; change nothing.")
    ] = False,
    grace: Annotated[
        str, typer.Option("--grace", help="Keep blobs and temporary files younger than this.")
    ] = "1h",
    state: StateOption = None,
    as_json: JsonOption = False,
) -> None:
    """Apply retention, then remove unreferenced artifacts and blobs."""
    from shipyard.artifacts.gc import collect, parse_age, plan

    seconds = 0 if grace.strip() in ("0", "0s") else parse_age(grace)
    a = adapters(state)
    result = (plan if dry_run else collect)(a.store, a.blobs, grace=seconds)
    data = {
        "dry_run": dry_run,
        "expired": [e.__dict__ for e in result.expired],
        "deleted": result.deleted,
        "blobs": [{"digest": b.digest, "size": b.size} for b in result.blobs],
        "temporaries": [str(p) for p in result.temporaries],
        "freed": result.freed,
    }
    if as_json:
        print_json(console, data)
        return
    verb = "would remove" if dry_run else "removed"
    for e in result.expired:
        console.print(f"{verb} {e.ref} from {e.repository}: {e.why}")
    for ref in result.deleted:
        console.print(f"{verb} artifact {ref} (in no repository, not deployed)")
    for blob in result.blobs:
        console.print(f"{verb} blob {blob.digest} ({blob.size:,} bytes)")
    console.print(
        f"{verb} {len(result.expired)} ref(s), {len(result.deleted)} artifact(s),"
        f" {len(result.blobs)} blob(s) ({result.freed:,} bytes), {len(result.temporaries)} temporary file(s)"
    )


@artifacts_app.command("fsck")
def artifacts_fsck(
    key: KeyOption = None, state: StateOption = None, as_json: JsonOption = False
) -> None:
    """Re-hash every blob, check every reference and signature, and every deployed file.

    Exits 1 on any problem.
    """
    from rich.progress import Progress

    from shipyard.artifacts.fsck import fsck
    from shipyard.artifacts.signing import KeyFile

    a = adapters(state)
    keys = KeyFile.resolve(a.state.signing_key, key)
    total = sum(blob.size for blob in a.blobs.blobs())
    with Progress(console=err, transient=True, disable=as_json) as progress:
        task = progress.add_task("re-hashing blobs", total=total or None)
        report = fsck(
            a.store,
            a.blobs,
            keys=keys,
            progress=lambda n: progress.advance(task, n),
            trees=a.state.deployment_dirs(),
        )
    if as_json:
        print_json(
            console,
            {
                "ok": report.ok,
                "blobs": report.blobs,
                "bytes": report.bytes,
                "artifacts": report.artifacts,
                "problems": [p.__dict__ for p in report.problems],
                "unused_blobs": [b.digest for b in report.unused],
                "temporary_files": [str(p) for p in report.temporaries],
            },
        )
    else:
        for problem in report.problems:
            console.print(
                f"[bold red]{problem.kind}[/] {problem.subject}: {problem.detail}", highlight=False
            )
        console.print(
            f"checked {report.blobs} blob(s) ({report.bytes:,} bytes) and {report.artifacts}"
            f" artifact(s): {len(report.problems)} problem(s), {len(report.unused)} unused blob(s)"
            f" (`shipyard artifacts gc` removes them), {len(report.temporaries)} temporary file(s)"
        )
    raise typer.Exit(0 if report.ok else 1)


@artifacts_app.command("pull")
def artifacts_pull(
    ref: Annotated[str, typer.Argument(help="NAME:VERSION")],
    out: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="File to write (default: NAME-VERSION.tar.gz)."),
    ] = None,
    key: KeyOption = None,
    state: StateOption = None,
    as_json: JsonOption = False,
) -> None:
    """Export an artifact: its exact bytes to a file, and FILE.manifest.json beside it."""
    from dataclasses import asdict

    from shipyard.artifacts.signing import KeyFile
    from shipyard.artifacts.transfer import pull

    a = adapters(state)
    name, version = split_ref(ref)
    target = out or Path(f"{name}-{version}.tar.gz")
    keys = KeyFile.resolve(a.state.signing_key, key)
    with err.status(f"pulling {ref}"):
        done = pull(a.store, a.blobs, name, version, target, keys=keys)
    if as_json:
        print_json(console, asdict(done))
        return
    console.print(
        f"{done.ref} -> {done.path} ({done.size:,} bytes, {done.digest}); manifest {done.manifest}"
    )


@artifacts_app.command("push")
def artifacts_push(
    file: Annotated[
        Path, typer.Argument(help="An artifact file written by `shipyard artifacts pull`.")
    ],
    repo: Annotated[
        str, typer.Option("--repository", "--repo", help="A mutable repository.")
    ] = DEV_REPOSITORY,
    manifest: Annotated[
        Path | None,
        typer.Option("--manifest", help="Manifest (default: FILE.manifest.json if present)."),
    ] = None,
    state: StateOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import an artifact file (verified as it streams in) into a repository."""
    from dataclasses import asdict

    from shipyard.artifacts.transfer import push

    a = adapters(state, create=True)
    with err.status(f"pushing {file}"):
        done = push(a.store, a.blobs, file, repository=repo, manifest=manifest)
    if as_json:
        print_json(console, asdict(done) | {"repository": repo})
        return
    how = "with its manifest" if done.manifest else "without a manifest (no stage results)"
    word = "added" if done.created else "already known (nothing changed)"
    console.print(f"{done.ref} {word} in {repo}, {done.digest}, {how}")


def promote(
    ref: Annotated[str, typer.Argument(help="NAME:VERSION")],
    source: Annotated[str, typer.Option("--from", help="Source repository.")] = DEV_REPOSITORY,
    target: Annotated[str, typer.Option("--to", help="Target repository.")] = RELEASE_REPOSITORY,
    reason: Annotated[str | None, typer.Option("--reason", help="Why, for the audit log.")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the policy's decision; change nothing.")
    ] = False,
    override: Annotated[
        bool,
        typer.Option(
            "--override",
            help="Admin: accept claimed stage results that do not verify (needs --reason; audited).",
        ),
    ] = False,
    key: KeyOption = None,
    state: StateOption = None,
    server: ServerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Promote an artifact if the target's policy allows it (metadata only; release signs it)."""
    name, version = split_ref(ref)
    result = services(state, server).artifacts.promote(
        name,
        version,
        override=override,
        reason=reason,
        source=source,
        target=target,
        dry_run=dry_run,
        key=key,
    )
    if as_json:
        print_json(console, result.model_dump(mode="json"))
        if dry_run:
            raise typer.Exit(0 if result.allowed or result.already else 1)
        return
    if dry_run:
        verdict = (
            "already in"
            if result.already
            else "would be promoted to"
            if result.allowed
            else "would be refused by"
        )
        console.print(f"{ref} {verdict} {target}: {result.summary}")
        for check in result.checks:
            if check.verdict == "refused":
                console.print(f"  {check.stage}: {check.status} (must be passed)")
        raise typer.Exit(0 if result.allowed or result.already else 1)
    signed = f", signed by {result.signed_by}" if result.signed_by else ""
    word = "promoted to" if result.promoted else "was already in"
    console.print(f"{ref} {word} {target} ({result.summary}){signed}")


def _artifact_dict(art: ArtifactView) -> dict[str, Any]:
    # Only the listing's fields, for a detail too; the time as the listing always wrote it.
    from shipyard.services.artifacts import ArtifactView

    fields = art.model_dump(mode="json", include=set(ArtifactView.model_fields))
    return fields | {"created_at": art.created_at.isoformat(timespec="seconds") + "Z"}


def register(app: typer.Typer) -> None:
    artifacts_app.add_typer(key_app, name="key")
    app.add_typer(artifacts_app, name="artifacts")
    app.command()(promote)
