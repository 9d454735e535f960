package server

import (
	"context"
	"log/slog"
	"strings"

	"gatehouse/authz/check"
)

// logDecision writes one line per refusal. Refusals an anonymous caller can cause at will
// (401, 404) log at debug so they cannot flood the log; refusals of a known profile (403,
// 429) at info; an unavailable dependency (503) at warn. No line holds a credential: only
// ids, the code and, at debug, the request headers through check.RedactHeader.
func logDecision(ctx context.Context, log *slog.Logger, r *check.Request, d *check.Decision) {
	if d.Allowed() {
		return
	}
	level := slog.LevelInfo
	switch d.Status() {
	case 401, 404:
		level = slog.LevelDebug
	case 503:
		level = slog.LevelWarn
	}
	if !log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("code", d.Code.String()),
		slog.Int("status", d.Status()),
		slog.String("request_id", d.RequestID),
		slog.String("method", r.Method),
		slog.String("path", r.Path),
		slog.String("source", r.Source.String()),
	}
	if d.Endpoint != nil {
		attrs = append(attrs, slog.String("endpoint", d.Endpoint.ID))
	}
	if d.Profile != nil {
		attrs = append(attrs, slog.String("profile", d.Profile.ID))
	}
	if d.TokenID != "" {
		attrs = append(attrs, slog.String("token_id", d.TokenID))
	}
	if d.Auth != check.AuthNone {
		attrs = append(attrs, slog.String("auth_method", d.Auth.String()))
	}
	if log.Enabled(ctx, slog.LevelDebug) {
		var hs []any
		switch m := r.Headers.(type) {
		case check.MapHeaders:
			for k, v := range m {
				hs = append(hs, slog.String(k, check.RedactHeader(k, v)))
			}
		case httpHeaders:
			for k, vs := range m {
				k = strings.ToLower(k)
				hs = append(hs, slog.String(k, check.RedactHeader(k, strings.Join(vs, ", "))))
			}
		}
		attrs = append(attrs, slog.Group("headers", hs...))
	}
	log.LogAttrs(ctx, level, "request refused", attrs...)
}
