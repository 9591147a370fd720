#!/usr/bin/env bash
# Sourced by scripts/test: finds the providers' official documents (OpenAPI
# files the sandbox validates requests with, and the tests check the
# connectors and simulators against), which this repository does not ship.
# $PASSERELLE_PSP_SPECS when set, else ../shared/psp-specs beside the clone.
# Found: PASSERELLE_PSP_SPECS is exported as an absolute path (tests run in
# each crate's directory). Not found: one line says which tests skip and how
# to run them; with CI=true it is an error instead, so CI never skips them.
psp_specs_dir="${PASSERELLE_PSP_SPECS:-../shared/psp-specs}"
if [ -d "$psp_specs_dir" ]; then
    PASSERELLE_PSP_SPECS="$(cd "$psp_specs_dir" && pwd)"
    export PASSERELLE_PSP_SPECS
elif [ "${CI:-}" = "true" ]; then
    echo "psp-specs: the providers' documents are missing ($psp_specs_dir); CI=true requires them: set PASSERELLE_PSP_SPECS=DIR or put them at ../shared/psp-specs" >&2
    exit 1
else
    echo "psp-specs: no providers' documents at $psp_specs_dir: the tests that check against them skip (each prints a 'skipped' line); set PASSERELLE_PSP_SPECS=DIR or put them at ../shared/psp-specs to run them" >&2
fi
unset psp_specs_dir
