package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"

	"github.com/tidwall/gjson"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/channels"
)

// MaxHistoryLimit is the most publications GET /history returns in one
// answer, and the number it returns when the request sets no limit; a
// larger limit is answered 400.
const MaxHistoryLimit = 1000

// historyAnswer is the answer of GET /history.
type historyAnswer struct {
	Channel      string        `json:"channel"`
	Epoch        string        `json:"epoch"`
	ReplayID     uint64        `json:"replayId"`
	Publications []historyItem `json:"publications"`
}

// historyItem is one publication of GET /history.
type historyItem struct {
	ReplayID uint64          `json:"replayId"`
	Data     json.RawMessage `json:"data"`
	Ext      json.RawMessage `json:"ext,omitempty"`
}

// history answers GET /history?channel=/x&since=N&limit=M: the retained
// publications of /x after offset N, oldest first, at most M of them, and
// the channel's position.
func (h *handler) history(w http.ResponseWriter, r *http.Request) error {
	if err := checkQuery(r, "channel", "since", "limit"); err != nil {
		return err
	}
	q := r.URL.Query()
	ch, err := historyChannel(q)
	if err != nil {
		return err
	}
	since, err := queryCount(q, "since", 0, math.MaxInt64)
	if err != nil {
		return err
	}
	limit, err := queryCount(q, "limit", MaxHistoryLimit, MaxHistoryLimit)
	if err != nil {
		return err
	}
	var pubs []*bayeux.Publication
	var pos bayeux.Position
	if limit == 0 {
		// Only the position: nothing is retained after the largest offset
		// (the server's own replays ask the same way).
		_, pos, err = h.srv.History(r.Context(), ch, math.MaxInt64, 1)
	} else {
		pubs, pos, err = h.srv.History(r.Context(), ch, since, int(limit))
	}
	if err != nil {
		return historyError("reading", ch, err)
	}
	writeJSON(w, http.StatusOK, historyAnswer{Channel: ch, Epoch: pos.Epoch, ReplayID: pos.Offset,
		Publications: historyItems(pubs)})
	return nil
}

// removeHistory answers DELETE /history?channel=/x: the history of /x is
// deleted, and its next publication starts a new epoch.
func (h *handler) removeHistory(w http.ResponseWriter, r *http.Request) error {
	if err := checkQuery(r, "channel"); err != nil {
		return err
	}
	ch, err := historyChannel(r.URL.Query())
	if err != nil {
		return err
	}
	if err := h.srv.RemoveHistory(r.Context(), ch); err != nil {
		return historyError("removing", ch, err)
	}
	writeJSON(w, http.StatusOK, result{OK: true})
	return nil
}

// historyChannel reads the channel of a /history request: a channel name,
// not a pattern. The API does not know the server's grammar, so names are
// checked against the wider one (channels.Wide); a name the server's
// grammar refuses has no publications. /meta and /service channels are
// never kept: they are answered as channels without history.
func historyChannel(q url.Values) (string, error) {
	ch, ok, err := queryParam(q, "channel")
	switch {
	case err != nil:
		return "", err
	case !ok || ch == "":
		return "", errBadRequest(`query parameter "channel" is required`)
	case !channels.Wide.ValidName(ch):
		return "", errBadRequest("channel " + quote(ch) + " is not a channel name (patterns are not allowed)")
	case channels.IsMeta(ch) || channels.IsService(ch):
		return "", errNoHistory(ch + " has no history: /meta and /service channels are never kept")
	}
	return ch, nil
}

// historyError is the answer to err, returned by the server when doing
// (reading, removing) the history of ch.
func historyError(doing, ch string, err error) error {
	if errors.Is(err, bayeux.ErrNoHistory) {
		e := errNoHistory(ch + " has no history: no history rule covers it")
		e.err = err
		return e
	}
	return fmt.Errorf("%s the history of %s: %w", doing, ch, err)
}

// historyItems turns the publications History returned into the items of
// the answer: each one's offset, and the data and ext that subscribers
// received, without the replayId and epoch the server adds to ext.
func historyItems(pubs []*bayeux.Publication) []historyItem {
	items := make([]historyItem, len(pubs))
	for i, p := range pubs {
		msg := gjson.ParseBytes(p.Message)
		items[i] = historyItem{ReplayID: p.Position.Offset, Data: json.RawMessage("null"),
			Ext: publisherExt(msg.Get("ext"))}
		if data := msg.Get("data"); data.Exists() {
			items[i].Data = json.RawMessage(data.Raw)
		}
	}
	return items
}

// publisherExt returns the object ext without its replayId and epoch
// members, or nil when nothing else is left.
func publisherExt(ext gjson.Result) json.RawMessage {
	if !ext.IsObject() {
		return nil
	}
	var b []byte
	ext.ForEach(func(k, v gjson.Result) bool {
		if s := k.String(); s == "replayId" || s == "epoch" {
			return true
		}
		if b == nil {
			b = append(b, '{')
		} else {
			b = append(b, ',')
		}
		b = append(b, k.Raw...)
		b = append(b, ':')
		b = append(b, v.Raw...)
		return true
	})
	if b == nil {
		return nil
	}
	return append(b, '}')
}

// queryParam returns the value of the query parameter name and whether it
// is present. A parameter given twice is refused rather than half ignored.
func queryParam(q url.Values, name string) (string, bool, error) {
	vs, ok := q[name]
	if len(vs) > 1 {
		return "", false, errBadRequest("query parameter " + quote(name) + " is given more than once")
	}
	if !ok {
		return "", false, nil
	}
	return vs[0], true, nil
}

// queryCount reads the query parameter name as an integer from 0 to most,
// def when it is absent.
func queryCount(q url.Values, name string, def, most uint64) (uint64, error) {
	s, ok, err := queryParam(q, name)
	if err != nil || !ok {
		return def, err
	}
	n, err := strconv.ParseUint(s, 10, 64)
	switch {
	case errors.Is(err, strconv.ErrRange), err == nil && n > most:
		return 0, errBadRequest("query parameter " + quote(name) + " must be at most " + strconv.FormatUint(most, 10))
	case err != nil:
		return 0, errBadRequest("query parameter " + quote(name) + " must be a non-negative integer, not " + quote(s))
	}
	return n, nil
}
