package ctl

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// nackWidth bounds the NACK text in the status table: Envoy's rejection details run to
// hundreds of characters, and -o yaml|json carry them whole.
const nackWidth = 72

// status shows what the xDS server published and what each connected node accepted:
// `status [-o table|yaml|json]`.
func (c *cli) status(ctx context.Context, args []string) error {
	fs := c.flags("status")
	format := fs.String("o", "table", "output format: table, yaml or json")
	if _, err := c.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *format != "table" && *format != "yaml" && *format != "json" {
		return usagef("status: -o must be table, yaml or json")
	}
	cc, err := c.conn.dial()
	if err != nil {
		return err
	}
	defer func() { _ = cc.Close() }()
	r, err := adminv1.NewStatusServiceClient(cc).ListNodes(ctx, &adminv1.ListNodesRequest{})
	if err != nil {
		return wrap(err, "list xDS nodes")
	}
	switch *format {
	case "json":
		return printJSON(c.stdout, []proto.Message{r}, true)
	case "yaml":
		return printYAML(c.stdout, []proto.Message{r}, true)
	}
	return printStatus(c.stdout, r)
}

// printStatus writes the published revision, refused snapshots when any, and one row per node
// and resource type; the node's columns are filled on its first row only.
func printStatus(w io.Writer, r *adminv1.ListNodesResponse) error {
	if r.GetPublishedRevision() == 0 {
		fmt.Fprintln(w, "nothing published yet")
	} else {
		fmt.Fprintf(w, "published revision %d\n", r.GetPublishedRevision())
	}
	if n := r.GetRejectedPublishes(); n > 0 {
		fmt.Fprintf(w, "refused snapshots: %d, last: %s\n", n, clip(r.GetLastRejectedError(), nackWidth))
	}
	if len(r.GetNodes()) == 0 {
		fmt.Fprintln(w, "no gateways connected")
		return nil
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tCLUSTER\tCONNECTED SINCE\tTYPE\tACKED\tLAST NACK")
	for _, n := range r.GetNodes() {
		node := []string{n.GetId(), dash(n.GetCluster()), when(n.GetConnectedSince())}
		types := n.GetTypes()
		if len(types) == 0 {
			// Connected, but nothing asked for yet.
			fmt.Fprintln(tw, strings.Join(append(node, "-", "-", "-"), "\t"))
			continue
		}
		for i, t := range types {
			if i == 1 {
				node = []string{"", "", ""}
			}
			nack := "-"
			if t.GetNackedVersion() != "" || t.GetLastError() != "" {
				nack = clip(dash(t.GetNackedVersion())+": "+t.GetLastError(), nackWidth)
			}
			fmt.Fprintln(tw, strings.Join(append(node, shortType(t.GetTypeUrl()), dash(t.GetAckedVersion()), nack), "\t"))
		}
	}
	return tw.Flush()
}

// shortType names an xDS type by its message name ("Cluster", "RouteConfiguration"); the authz
// sidecar's types get an "authz." prefix, since its Endpoint is not Envoy's.
func shortType(typeURL string) string {
	full := typeURL[strings.LastIndex(typeURL, "/")+1:]
	name := full[strings.LastIndex(full, ".")+1:]
	if strings.HasPrefix(full, "gatehouse.authz.") {
		return "authz." + name
	}
	return name
}

// clip puts s on one line and cuts it to at most n runes, marking a cut with "…".
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return strings.TrimRight(string(r[:n-1]), " ") + "…"
}
