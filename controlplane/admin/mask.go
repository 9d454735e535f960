package admin

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// maskRules says how a resource's fields behave in an update mask.
type maskRules struct {
	// prefix names the resource in error fields, e.g. "collection".
	prefix string
	// keys identify the resource or carry the etag; they may be named (a REST body echoed back
	// names them) but are never changed by an update.
	keys []string
	// outputOnly are set by the server; naming them is refused.
	outputOnly []string
}

// updatePaths returns the field paths an update changes. An empty mask means every field the
// request sets, except the keys and output-only fields. Paths naming unknown or output-only
// fields are refused with INVALID_ARGUMENT naming update_mask.
func updatePaths(req proto.Message, mask *fieldmaskpb.FieldMask, rules maskRules) ([]string, error) {
	skip := func(path string) bool {
		for _, k := range rules.keys {
			if path == k {
				return true
			}
		}
		return false
	}
	if len(mask.GetPaths()) == 0 {
		var paths []string
		req.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
			name := string(fd.Name())
			if !skip(name) && !contains(rules.outputOnly, name) {
				paths = append(paths, name)
			}
			return true
		})
		return paths, nil
	}
	var v violations
	var paths []string
	md := req.ProtoReflect().Descriptor()
	for i, p := range mask.GetPaths() {
		field := fmt.Sprintf("update_mask.paths[%d]", i)
		if _, err := resolvePath(md, p); err != nil {
			v.add(field, "%q: %v", p, err)
			continue
		}
		if outputOnlyPath(p, rules.outputOnly) {
			v.add(field, "%q is set by the server and cannot be updated", p)
			continue
		}
		if skip(p) {
			continue
		}
		paths = append(paths, p)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	return paths, nil
}

// outputOnlyPath reports whether p is an output-only field or lies inside one.
func outputOnlyPath(p string, outputOnly []string) bool {
	for _, o := range outputOnly {
		if p == o || strings.HasPrefix(p, o+".") {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// resolvePath checks that path names fields of md, descending only through singular message
// fields, and returns the descriptors along it.
func resolvePath(md protoreflect.MessageDescriptor, path string) ([]protoreflect.FieldDescriptor, error) {
	if path == "" {
		return nil, fmt.Errorf("empty path")
	}
	parts := strings.Split(path, ".")
	fds := make([]protoreflect.FieldDescriptor, 0, len(parts))
	for i, name := range parts {
		if md == nil {
			return nil, fmt.Errorf("%q is not a message, so it has no field %q", parts[i-1], name)
		}
		fd := md.Fields().ByName(protoreflect.Name(name))
		if fd == nil {
			return nil, fmt.Errorf("no field %q in %s", name, md.Name())
		}
		fds = append(fds, fd)
		md = nil
		if fd.Message() != nil && !fd.IsList() && !fd.IsMap() && !isWellKnown(fd.Message()) {
			md = fd.Message()
		}
	}
	return fds, nil
}

// isWellKnown reports whether md is a google.protobuf type that is replaced whole.
func isWellKnown(md protoreflect.MessageDescriptor) bool {
	return md.ParentFile().Package() == "google.protobuf"
}

// applyPaths copies the fields at paths from src into dst; a field src does not set is cleared
// in dst. Paths must have passed resolvePath. Intermediate messages are created in dst, which
// also selects that member of a oneof.
func applyPaths(dst, src proto.Message, paths []string) {
	src = proto.Clone(src) // dst must not share sub-messages with the request
	for _, p := range paths {
		d, s := dst.ProtoReflect(), src.ProtoReflect()
		parts := strings.Split(p, ".")
		for _, name := range parts[:len(parts)-1] {
			fd := d.Descriptor().Fields().ByName(protoreflect.Name(name))
			d = d.Mutable(fd).Message()
			s = s.Get(fd).Message()
		}
		fd := d.Descriptor().Fields().ByName(protoreflect.Name(parts[len(parts)-1]))
		if s.Has(fd) {
			d.Set(fd, s.Get(fd))
		} else {
			d.Clear(fd)
		}
	}
}

// touches reports whether an update of paths changes field, given as a dotted path.
func touches(paths []string, field string) bool {
	for _, p := range paths {
		if p == field || strings.HasPrefix(field, p+".") || strings.HasPrefix(p, field+".") {
			return true
		}
	}
	return false
}
