package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"github.com/gorilla/mux"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/channels"
)

// result is the outcome of one action: {"ok":true}, or {"ok":false,
// "error":{...}} in a batch.
type result struct {
	OK    bool       `json:"ok"`
	Error *errorBody `json:"error,omitempty"`
}

// publishRequest is the body of POST /publish, or one item of a batch.
type publishRequest struct {
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
	Ext     json.RawMessage `json:"ext"`
	Exclude string          `json:"exclude"`
	// To, when present, restricts the publish to an audience (see
	// bayeux.Audience), on every node.
	To *audience `json:"to"`
}

// audience is the "to" of a publish request.
type audience struct {
	Users     []string `json:"users"`
	Roles     []string `json:"roles"`
	ClientIDs []string `json:"clientIds"`
}

// deliverRequest is the body of POST /clients/{clientId}/deliver.
type deliverRequest struct {
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

// channelCount is one entry of GET /channels.
type channelCount struct {
	Channel     string `json:"channel"`
	Subscribers int    `json:"subscribers"`
}

// clientInfo is the answer of GET /clients/{clientId}.
type clientInfo struct {
	ClientID      string   `json:"clientId"`
	Subscriptions []string `json:"subscriptions"`
	User          string   `json:"user,omitempty"`
	Roles         []string `json:"roles,omitempty"`
}

// health answers GET /health, the only route served without
// authorization: it says the process answers and nothing else.
func (h *handler) health(w http.ResponseWriter, r *http.Request) error {
	if err := checkQuery(r); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, result{OK: true})
	return nil
}

// publish answers POST /publish: one publish request, or a JSON array of
// them processed in order, each with its own result.
func (h *handler) publish(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	if body[0] != '[' {
		if err := h.publishOne(r.Context(), body); err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, result{OK: true})
		return nil
	}
	var items []json.RawMessage
	if err := decodeStrict(body, &items); err != nil {
		return err
	}
	results := make([]result, len(items))
	for i, item := range items {
		results[i] = result{OK: true}
		if err := h.publishOne(r.Context(), item); err != nil {
			ae := classify(err)
			if ae.status >= 500 {
				h.log.Error("api: batch publish failed", "index", i, "err", err)
			}
			results[i] = result{Error: &errorBody{Code: ae.code, Message: ae.message}}
		}
	}
	writeJSON(w, http.StatusOK, struct {
		Results []result `json:"results"`
	}{results})
	return nil
}

// publishOne validates and publishes one publish request.
func (h *handler) publishOne(ctx context.Context, raw []byte) error {
	var p publishRequest
	if err := decodeStrict(raw, &p); err != nil {
		return err
	}
	if p.Channel == "" {
		return errBadRequest(`"channel" is required`)
	}
	if p.Data == nil {
		return errBadRequest(`"data" is required`)
	}
	var opts []bayeux.PublishOption
	if ext := bytes.TrimSpace(p.Ext); len(ext) > 0 && string(ext) != "null" {
		if ext[0] != '{' {
			return errBadRequest(`"ext" must be a JSON object`)
		}
		opts = append(opts, bayeux.WithExt(string(ext)))
	}
	if p.Exclude != "" {
		opts = append(opts, bayeux.Excluding(p.Exclude))
	}
	var err error
	if p.To != nil {
		to := bayeux.Audience{Users: p.To.Users, Roles: p.To.Roles, ClientIDs: p.To.ClientIDs}
		err = h.srv.PublishTo(ctx, p.Channel, p.Data, to, opts...)
	} else {
		err = h.srv.Publish(ctx, p.Channel, p.Data, opts...)
	}
	if err != nil {
		return fmt.Errorf("publishing on %s: %w", p.Channel, err)
	}
	return nil
}

// deliver answers POST /clients/{clientId}/deliver: a message to one client
// on a channel, whether or not it subscribes to it.
func (h *handler) deliver(w http.ResponseWriter, r *http.Request) error {
	id := mux.Vars(r)["clientId"]
	body, err := readBody(r)
	if err != nil {
		return err
	}
	var d deliverRequest
	if err := decodeStrict(body, &d); err != nil {
		return err
	}
	if d.Channel == "" {
		return errBadRequest(`"channel" is required`)
	}
	if d.Data == nil {
		return errBadRequest(`"data" is required`)
	}
	if channels.IsMeta(d.Channel) {
		// A message on a /meta channel would pass for a protocol reply.
		return &apiError{status: http.StatusUnprocessableEntity, code: codeRejected,
			message: "403:" + d.Channel + ":Forbidden channel"}
	}
	if err := h.srv.Deliver(r.Context(), id, d.Channel, d.Data); err != nil {
		return fmt.Errorf("delivering on %s to %s: %w", d.Channel, id, err)
	}
	writeJSON(w, http.StatusOK, result{OK: true})
	return nil
}

// disconnect answers DELETE /clients/{clientId}: the session ends and the
// client is told to handshake again.
func (h *handler) disconnect(w http.ResponseWriter, r *http.Request) error {
	id := mux.Vars(r)["clientId"]
	if err := h.srv.Disconnect(r.Context(), id); err != nil {
		return fmt.Errorf("disconnecting %s: %w", id, err)
	}
	writeJSON(w, http.StatusOK, result{OK: true})
	return nil
}

// client answers GET /clients/{clientId}: the client's subscriptions and
// the identity an extension gave it.
func (h *handler) client(w http.ResponseWriter, r *http.Request) error {
	if err := checkQuery(r); err != nil {
		return err
	}
	id := mux.Vars(r)["clientId"]
	sess := h.srv.Session(id)
	if sess == nil {
		return fmt.Errorf("looking up %s: %w", id, bayeux.ErrUnknownClient)
	}
	info := clientInfo{ClientID: sess.ID(), Subscriptions: sess.Subscriptions()}
	if info.Subscriptions == nil {
		info.Subscriptions = []string{}
	}
	slices.Sort(info.Subscriptions)
	if ident := sess.Identity(); ident != nil {
		info.User, info.Roles = ident.User, ident.Roles
	}
	writeJSON(w, http.StatusOK, info)
	return nil
}

// clients answers GET /clients: the number of sessions (of the whole
// cluster when there is one), or, with ?channel=, the number and ids of this
// node's clients that a message published on that channel reaches.
func (h *handler) clients(w http.ResponseWriter, r *http.Request) error {
	if err := checkQuery(r, "channel"); err != nil {
		return err
	}
	q := r.URL.Query()
	if !q.Has("channel") {
		n, _, err := h.srv.Counts(r.Context())
		if err != nil {
			return fmt.Errorf("counting sessions: %w", err)
		}
		writeJSON(w, http.StatusOK, struct {
			Count int `json:"count"`
		}{n})
		return nil
	}
	ch := q.Get("channel")
	if channels.Expand(ch) == nil {
		return errBadRequest("channel " + quote(ch) + " is not a channel name (patterns are not allowed)")
	}
	sessions := h.srv.Recipients(ch)
	ids := make([]string, len(sessions))
	for i, s := range sessions {
		ids[i] = s.ID()
	}
	slices.Sort(ids)
	writeJSON(w, http.StatusOK, struct {
		Channel string   `json:"channel"`
		Count   int      `json:"count"`
		Clients []string `json:"clients"`
	}{ch, len(ids), ids})
	return nil
}

// channels answers GET /channels: every subscribed channel or pattern with
// its subscriber count (of the whole cluster when there is one), sorted by
// name; ?prefix=/a keeps /a and what is below it.
func (h *handler) channels(w http.ResponseWriter, r *http.Request) error {
	if err := checkQuery(r, "prefix"); err != nil {
		return err
	}
	prefix := r.URL.Query().Get("prefix")
	if prefix != "" && !strings.HasPrefix(prefix, "/") {
		return errBadRequest("prefix " + quote(prefix) + " does not start with /")
	}
	prefix = strings.TrimSuffix(prefix, "/")
	_, counts, err := h.srv.Counts(r.Context())
	if err != nil {
		return fmt.Errorf("counting subscribers: %w", err)
	}
	list := []channelCount{}
	for pattern, n := range counts {
		if prefix == "" || pattern == prefix || strings.HasPrefix(pattern, prefix+"/") {
			list = append(list, channelCount{Channel: pattern, Subscribers: n})
		}
	}
	slices.SortFunc(list, func(a, b channelCount) int { return strings.Compare(a.Channel, b.Channel) })
	writeJSON(w, http.StatusOK, struct {
		Channels []channelCount `json:"channels"`
	}{list})
	return nil
}

// readBody reads the request body, limited by wrap, without surrounding
// whitespace; it refuses an empty body.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, fmt.Errorf("reading the request body: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, errBadRequest("the request body is empty; send JSON")
	}
	return b, nil
}

// decodeStrict decodes exactly one JSON value into v, refusing unknown
// fields so that a misspelt option is an error rather than ignored.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &apiError{status: http.StatusBadRequest, code: codeBadRequest,
			message: "invalid JSON body: " + jsonProblem(err), err: err}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errBadRequest("invalid JSON body: data after the JSON value")
	}
	return nil
}

// jsonProblem describes a decoding error without Go type names.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		return strings.TrimPrefix(err.Error(), "json: ")
	}
	if te.Field == "" {
		return "expected an object, got a " + te.Value
	}
	if te.Type.Kind() == reflect.String {
		return quote(te.Field) + " must be a string, not a " + te.Value
	}
	return quote(te.Field) + " cannot be a " + te.Value
}

// checkQuery refuses query parameters other than allowed, so that a
// misspelt filter is an error rather than ignored.
func checkQuery(r *http.Request, allowed ...string) error {
	for name := range r.URL.Query() {
		if !slices.Contains(allowed, name) {
			return errBadRequest("unknown query parameter " + quote(name))
		}
	}
	return nil
}

func quote(s string) string { return fmt.Sprintf("%q", s) }
