#!/bin/sh
# Regenerates the committed example reports in Reports/ (one per incident fixture) and the
# generated docs. ReportGoldenTests fails whenever a committed report differs from what the code
# writes now; this is the one command that re-records them, on purpose.
set -eu
cd "$(dirname "$0")/.."
RECORD_REPORTS=1 swift test --filter ReportGoldenTests
swift run investigate rules --markdown > docs/diagnosis.md
git status --short Reports docs/diagnosis.md
