"""Each forge's signature check against the example vectors of its own documentation."""

from __future__ import annotations

import pytest

from shipyard.server.webhooks import standard
from shipyard.server.webhooks.gitea import Gitea
from shipyard.server.webhooks.github import GitHub
from shipyard.server.webhooks.gitlab import GitLab
from shipyard.services.projects import Forge

# GitHub, "Validating webhook deliveries", section "Testing the webhook payload validation":
# https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_PAYLOAD = b"Hello, World!"
GITHUB_DIGEST = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

# Standard Webhooks, the reference libraries' signing vector (GitLab's signing token follows
# the spec): https://github.com/standard-webhooks/standard-webhooks (libraries/*/tests)
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SW_TIMESTAMP = 1614265330
SW_PAYLOAD = b'{"test": 2432232314}'
SW_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def sw_headers(signature: str = SW_SIGNATURE) -> dict[str, str]:
    return {
        "webhook-id": SW_ID,
        "webhook-timestamp": str(SW_TIMESTAMP),
        "webhook-signature": signature,
    }


def test_github_accepts_its_documented_signature_and_nothing_else() -> None:
    github = GitHub()
    good = {"x-hub-signature-256": f"sha256={GITHUB_DIGEST}"}
    assert github.verify(good, GITHUB_PAYLOAD, GITHUB_SECRET)
    assert not github.verify(good, b"Hello, World?", GITHUB_SECRET)
    assert not github.verify(good, GITHUB_PAYLOAD, "another secret")
    assert not github.verify({"x-hub-signature-256": GITHUB_DIGEST}, GITHUB_PAYLOAD, GITHUB_SECRET)
    assert not github.verify({}, GITHUB_PAYLOAD, GITHUB_SECRET)
    assert not github.verify({"x-hub-signature-256": "sha256=é"}, GITHUB_PAYLOAD, GITHUB_SECRET)


@pytest.mark.parametrize("forge", [Forge.GITEA, Forge.FORGEJO])
def test_gitea_and_forgejo_accept_the_same_hmac_without_its_prefix(forge: Forge) -> None:
    # Gitea's deliverer puts one hex HMAC-SHA256 of the body in X-Gitea-Signature and, with
    # "sha256=", in X-Hub-Signature-256 (go-gitea/gitea services/webhook/deliver.go); Gitea's
    # docs publish no vector of their own, so GitHub's documented one serves for both.
    provider = Gitea(forge)
    own = {f"x-{forge.value}-signature": GITHUB_DIGEST}
    assert provider.verify(own, GITHUB_PAYLOAD, GITHUB_SECRET)
    assert not provider.verify(own, GITHUB_PAYLOAD + b" ", GITHUB_SECRET)
    assert not provider.verify(
        {f"x-{forge.value}-signature": f"sha256={GITHUB_DIGEST}"}, GITHUB_PAYLOAD, GITHUB_SECRET
    )
    assert not provider.verify({}, GITHUB_PAYLOAD, GITHUB_SECRET)


def test_forgejo_checks_its_own_signature_first_and_gitea_s_only_without_it() -> None:
    forgejo = Gitea(Forge.FORGEJO)
    both = {"x-forgejo-signature": "0" * 64, "x-gitea-signature": GITHUB_DIGEST}
    assert not forgejo.verify(both, GITHUB_PAYLOAD, GITHUB_SECRET)
    assert forgejo.verify({"x-gitea-signature": GITHUB_DIGEST}, GITHUB_PAYLOAD, GITHUB_SECRET)


def test_standard_webhooks_signs_the_documented_vector() -> None:
    assert standard.sign(SW_SECRET, SW_ID, SW_TIMESTAMP, SW_PAYLOAD) == SW_SIGNATURE


def test_gitlab_accepts_the_standard_webhooks_vector_within_five_minutes() -> None:
    assert GitLab(now=SW_TIMESTAMP).verify(sw_headers(), SW_PAYLOAD, SW_SECRET)
    assert GitLab(now=SW_TIMESTAMP - 300).verify(sw_headers(), SW_PAYLOAD, SW_SECRET)
    assert not GitLab(now=SW_TIMESTAMP + 301).verify(sw_headers(), SW_PAYLOAD, SW_SECRET)
    assert not GitLab(now=SW_TIMESTAMP - 301).verify(sw_headers(), SW_PAYLOAD, SW_SECRET)
    assert not GitLab().verify(sw_headers(), SW_PAYLOAD, SW_SECRET)  # the real clock: a replay


def test_gitlab_takes_one_valid_signature_among_several_and_refuses_a_changed_one() -> None:
    gitlab = GitLab(now=SW_TIMESTAMP)
    rotating = sw_headers(f"v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= {SW_SIGNATURE}")
    assert gitlab.verify(rotating, SW_PAYLOAD, SW_SECRET)
    changed = sw_headers("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=")
    assert not gitlab.verify(changed, SW_PAYLOAD, SW_SECRET)
    assert not gitlab.verify(sw_headers(), b'{"test": 2432232315}', SW_SECRET)
    assert not gitlab.verify({**sw_headers(), "webhook-id": "msg_other"}, SW_PAYLOAD, SW_SECRET)
    assert not gitlab.verify({**sw_headers(), "webhook-timestamp": "soon"}, SW_PAYLOAD, SW_SECRET)


def test_gitlab_secret_token_is_compared_and_every_credential_sent_must_hold() -> None:
    gitlab = GitLab(now=SW_TIMESTAMP)
    assert gitlab.verify({"x-gitlab-token": SW_SECRET}, b"{}", SW_SECRET)
    assert not gitlab.verify({"x-gitlab-token": SW_SECRET + "x"}, b"{}", SW_SECRET)
    assert not gitlab.verify({}, SW_PAYLOAD, SW_SECRET)
    # A right token does not rescue a wrong signature, nor the other way round.
    wrong_signature = {"x-gitlab-token": SW_SECRET, **sw_headers("v1,AAAA")}
    assert not gitlab.verify(wrong_signature, SW_PAYLOAD, SW_SECRET)
    wrong_token = {"x-gitlab-token": "nope", **sw_headers()}
    assert not gitlab.verify(wrong_token, SW_PAYLOAD, SW_SECRET)
    assert gitlab.verify({"x-gitlab-token": SW_SECRET, **sw_headers()}, SW_PAYLOAD, SW_SECRET)
