// Package e2e holds the end-to-end test of the Gatehouse data path: it builds the real
// binaries, runs the control plane, one authz sidecar and the example recipe runtime as
// processes, configures them with gatehousectl, and sends every call through a real nginx that
// asks the authz HTTP check (auth_request) before proxying to the runtime.
//
// It needs nginx on PATH (Debian: apt-get install nginx). Without it the test is skipped, except
// in CI (CI=true), where a missing nginx fails the run. `go test -short` skips it.
package e2e
