package ctl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// printItems writes resources as a table, YAML or JSON. One item asked for by id prints as an
// object; a list prints as a list. names, when set, maps ids to names for table columns that
// reference other resources.
func printItems(w io.Writer, format, kind string, items []proto.Message, single bool, names map[string]string) error {
	switch format {
	case "json":
		return printJSON(w, items, single)
	case "yaml":
		return printYAML(w, items, single)
	}
	return printTable(w, kind, items, names)
}

func printJSON(w io.Writer, items []proto.Message, single bool) error {
	opts := protojson.MarshalOptions{UseProtoNames: true}
	parts := make([]json.RawMessage, len(items))
	for i, m := range items {
		b, err := opts.Marshal(m)
		if err != nil {
			return fmt.Errorf("encode json: %w", err)
		}
		parts[i] = b
	}
	var raw []byte
	var err error
	if single && len(parts) == 1 {
		raw = parts[0]
	} else if raw, err = json.Marshal(parts); err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	buf.WriteByte('\n')
	_, err = w.Write(buf.Bytes())
	return err
}

func printYAML(w io.Writer, items []proto.Message, single bool) error {
	var n *yaml.Node
	if single && len(items) == 1 {
		n = messageNode(items[0], nil)
	} else {
		n = sequence()
		for _, m := range items {
			n.Content = append(n.Content, messageNode(m, nil))
		}
		if len(items) == 0 {
			n.Style = yaml.FlowStyle
		}
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return fmt.Errorf("encode yaml: %w", err)
	}
	return enc.Close()
}

func printTable(w io.Writer, kind string, items []proto.Message, names map[string]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	header := map[string]string{
		kCollections: "ID\tNAME\tVERSION\tPATH",
		kEndpoints:   "ID\tNAME\tMETHOD\tPATH\tRECIPE\tACTIVE\tTIMEOUT",
		kClients:     "ID\tNAME\tEMAIL\tACTIVE",
		kProfiles:    "ID\tNAME\tAUTH\tCOLLECTIONS\tPOLICY\tACTIVE",
		kTokens:      "ID\tNAME\tPREFIX\tCREATED\tEXPIRES\tREVOKED\tROTATED TO",
		kPolicies:    "ID\tNAME\tRATE LIMIT\tQUOTA",
		kAudit:       "TIME\tACTOR\tACTION\tTYPE\tRESOURCE\tNAME\tREVISION",
	}[kind]
	fmt.Fprintln(tw, header)
	for _, m := range items {
		fmt.Fprintln(tw, strings.Join(row(m, names), "\t"))
	}
	return tw.Flush()
}

func row(m proto.Message, names map[string]string) []string {
	switch m := m.(type) {
	case *adminv1.Collection:
		return []string{m.GetId(), m.GetName(), m.GetVersion(), m.GetPath()}
	case *adminv1.Endpoint:
		timeout := ""
		if m.GetTimeout() != nil {
			timeout = m.GetTimeout().AsDuration().String()
		}
		return []string{m.GetId(), m.GetName(), m.GetMethod(), m.GetPath(), m.GetRecipeId(), yesNo(m.GetActive()), timeout}
	case *adminv1.Client:
		return []string{m.GetId(), m.GetName(), dash(m.GetEmail()), yesNo(m.Active == nil || m.GetActive())}
	case *adminv1.AccessProfile:
		auth := "api_token"
		if m.GetJwt() != nil {
			auth = "jwt"
		}
		cols := make([]string, len(m.GetCollectionIds()))
		for i, id := range m.GetCollectionIds() {
			cols[i] = nameOf(names, id)
		}
		return []string{m.GetId(), m.GetName(), auth, dash(strings.Join(cols, ",")), dash(nameOf(names, m.GetPolicyId())), yesNo(m.Active == nil || m.GetActive())}
	case *adminv1.ApiToken:
		return []string{m.GetId(), dash(m.GetName()), m.GetDisplayPrefix() + "…", when(m.GetCreateTime()), when(m.GetExpireTime()), when(m.GetRevokeTime()), dash(m.GetRotatedToId())}
	case *adminv1.AccessPolicy:
		rate, quota := "-", "-"
		if r := m.GetRateLimit(); r != nil {
			rate = fmt.Sprintf("%d/%s", r.GetRequests(), r.GetPer())
			if r.GetBurst() != 0 {
				rate += " burst " + strconv.FormatUint(uint64(r.GetBurst()), 10)
			}
		}
		if q := m.GetQuota(); q != nil {
			quota = fmt.Sprintf("%d/%s", q.GetRequests(), q.GetPer())
		}
		return []string{m.GetId(), m.GetName(), rate, quota}
	case *adminv1.AuditEvent:
		return []string{when(m.GetTime()), m.GetActor(), m.GetAction(), m.GetResourceType(), m.GetResourceId(), dash(m.GetResourceName()),
			fmt.Sprintf("%d→%d", m.GetRevisionBefore(), m.GetRevisionAfter())}
	}
	return []string{fmt.Sprint(m)}
}

func when(t *timestamppb.Timestamp) string {
	if t == nil {
		return "-"
	}
	return t.AsTime().UTC().Format(time.RFC3339)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// nameOf returns the name of id when known, else id.
func nameOf(names map[string]string, id string) string {
	if n, ok := names[id]; ok {
		return n
	}
	return id
}
