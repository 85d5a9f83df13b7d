"""Code and supply-chain analysis of a build: bandit rules, secrets, vulnerabilities, licences."""
