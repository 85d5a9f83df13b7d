"""Code and supply-chain analysis of a build: the analyze stage's gate.

interface.py     Finding, ScanResult, Target, Distribution, the Scanner protocol
run.py           run_analysis(): the configured scanners, the policy, the report files
policy.py        fail_on, allow entries by id or alias, expiry
bandit.py        code: bandit rules
dependencies.py  vulnerabilities: installed distributions x OSV records
osv.py             matching records to versions (ranges, lists, aliases, fixes, severity)
vulndb.py          the offline OSV database and OSV's API
secrets.py       committed credentials
models.py        pickle, joblib and skops model files (pickles.py walks the opcodes)
licences.py      licences from metadata against a deny list
sbom.py          the CycloneDX SBOM
sarif.py         SARIF 2.1.0
summary.py       the human summary
"""
