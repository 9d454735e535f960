package compile

import (
	"fmt"
	"testing"
)

// BenchmarkCompile measures one whole compile; the target is under 1 s for 100,000 endpoints.
// Run: go test ./controlplane/compile -run '^$' -bench Compile -benchmem
func BenchmarkCompile(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		b.Run(fmt.Sprintf("endpoints=%d", n), func(b *testing.B) {
			snap := largeSnapshot(n)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Compile(snap, Settings{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
