package store

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

const crashChildEnv = "GATEHOUSE_STORE_CRASH_CHILD"

// TestCrashChild is the writer process of TestSIGKILLLosesNothingAcknowledged; it does
// nothing unless started by it.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashChildEnv)
	if path == "" {
		t.Skip("writer process of the crash test")
	}
	s, err := Open(context.Background(), Config{Path: path})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(3)
	}
	start := s.Revision()
	for i := start + 1; ; i++ {
		id := fmt.Sprintf("col_%08d", i)
		rev, err := s.Update(func(tx *Tx) error {
			// Two records a write: a half-written transaction would show one without the other.
			if err := Put(tx, Collections, &adminv1.Collection{Id: id, Name: "name-" + id, Path: "p" + id[4:]}); err != nil {
				return err
			}
			return AppendAudit(tx, &adminv1.AuditEvent{Action: "create", ResourceId: id, RevisionAfter: tx.NextRevision()})
		})
		if err != nil {
			fmt.Println("update:", err)
			os.Exit(4)
		}
		// Acknowledged only after Update returned: the write is durable from here on.
		fmt.Printf("acked %s %d\n", id, rev)
	}
}

func TestSIGKILLLosesNothingAcknowledged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cp.db")
	acked := map[string]uint64{}
	var lastRev uint64
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := bufio.NewScanner(out)
		n := 0
		deadline := time.Now().Add(20 * time.Second)
		for lines.Scan() {
			f := strings.Fields(lines.Text())
			if len(f) != 3 || f[0] != "acked" {
				continue
			}
			rev, _ := strconv.ParseUint(f[2], 10, 64)
			acked[f[1]], lastRev = rev, rev
			n++
			// Kill mid-stream after a round-dependent number of writes.
			if n == 50+round*37 || time.Now().After(deadline) {
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				break
			}
		}
		// Lines written before the kill are acknowledged writes too.
		for lines.Scan() {
			if f := strings.Fields(lines.Text()); len(f) == 3 && f[0] == "acked" {
				rev, _ := strconv.ParseUint(f[2], 10, 64)
				acked[f[1]], lastRev = rev, rev
			}
		}
		_ = cmd.Wait()
		if n == 0 {
			t.Fatalf("round %d: the writer acknowledged nothing", round)
		}
	}

	s, err := Open(t.Context(), Config{Path: path})
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	defer s.Close()
	if s.Revision() < lastRev {
		t.Fatalf("revision %d after reopen, but %d was acknowledged", s.Revision(), lastRev)
	}
	err = s.View(func(tx *Tx) error {
		for id := range acked {
			c, err := Get(tx, Collections, "", id)
			if err != nil {
				t.Errorf("acknowledged write lost: %v", err)
				continue
			}
			if c.GetName() != "name-"+id {
				t.Errorf("collection %s has name %q", id, c.GetName())
			}
		}
		cols, err := List(tx, Collections, "", "", 0)
		if err != nil {
			return err
		}
		events, err := ListAudit(tx, "", 0, "")
		if err != nil {
			return err
		}
		// Every revision is one whole write: one collection and its audit event.
		if uint64(len(cols)) != tx.Revision() || len(events) != len(cols) {
			t.Errorf("revision %d, %d collections, %d audit events: a write was half kept", tx.Revision(), len(cols), len(events))
		}
		seen := map[string]bool{}
		for _, ev := range events {
			seen[ev.GetResourceId()] = true
		}
		for _, c := range cols {
			if !seen[c.GetId()] {
				t.Errorf("collection %s has no audit event", c.GetId())
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d acknowledged writes over 3 kills, all present; revision %d", len(acked), s.Revision())
}
