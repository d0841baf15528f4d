package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/bayou-pubsub/bayou/bayeux"
)

// notification is what a client receives on /notifications.
type notification struct {
	From string `json:"from"`
	Text string `json:"text"`
}

// maxText caps the text of a notification, in bytes.
const maxText = 1000

// notifier sends notifications to users, wherever they are connected: by
// the /service/notify channel for clients, by POST /notify for back ends.
type notifier struct {
	srv      *bayeux.Server
	maxSends int64  // per session
	key      string // of POST /notify
	log      *slog.Logger
}

// guide:begin notify
// notify publishes n on /notifications to the sessions of user only, on
// every node of the cluster, and returns how many sessions user has.
func (nt *notifier) notify(ctx context.Context, user string, n notification) (int, error) {
	to := bayeux.Audience{Users: []string{user}}
	if err := nt.srv.PublishTo(ctx, notifications, n, to); err != nil {
		return 0, err
	}
	sessions, err := nt.srv.SessionsOf(ctx, user) // every node's
	if err != nil {
		// Some node did not answer: sessions holds the others'.
		nt.log.Warn("listing sessions", "user", user, "err", err)
	}
	return len(sessions), nil
}

// guide:end notify

// guide:begin service
// serve answers /service/notify. A client publishes {"to": "bob", "text":
// "hi"} there; bob's sessions receive {"from": <the sender>, "text": "hi"}
// on /notifications, and the client gets the answer {"to": "bob",
// "online": 2}: how many sessions bob has, all nodes together.
func (nt *notifier) serve(ctx context.Context, m *bayeux.Message) (any, error) {
	from := userOf(m.Session)
	if from == "" { // the extension lets no such message through
		return nil, errors.New("no user")
	}
	var req struct{ To, Text string }
	if json.Unmarshal([]byte(m.Data), &req) != nil || !validUser.MatchString(req.To) || len(req.Text) > maxText {
		return nil, errors.New(`expected {"to": user, "text": text}`)
	}
	v, _ := m.Session.Get(sentKey) // set at handshake
	if sent, ok := v.(*atomic.Int64); !ok || sent.Add(1) > nt.maxSends {
		return nil, errors.New("too many notifications from this session")
	}
	online, err := nt.notify(ctx, req.To, notification{From: from, Text: req.Text})
	if err != nil {
		nt.log.Warn("notify", "to", req.To, "err", err)
		return nil, errors.New("not sent")
	}
	return map[string]any{"to": req.To, "online": online}, nil
}

// guide:end service

// ServeHTTP answers POST /notify for back ends: the body {"user": "bob",
// "text": "hi"} notifies bob (from "server"), and the answer is {"online":
// N}. It needs the header "Authorization: Bearer <key>".
func (nt *notifier) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(key), []byte(nt.key)) != 1 {
		http.Error(w, "a valid Authorization: Bearer <key> is required", http.StatusUnauthorized)
		return
	}
	var req struct{ User, Text string }
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8*maxText)).Decode(&req); err != nil ||
		!validUser.MatchString(req.User) || len(req.Text) > maxText {
		http.Error(w, `expected {"user": user, "text": text}`, http.StatusBadRequest)
		return
	}
	online, err := nt.notify(r.Context(), req.User, notification{From: "server", Text: req.Text})
	if err != nil {
		nt.log.Warn("notify", "to", req.User, "err", err)
		http.Error(w, "not sent", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]int{"online": online})
}
