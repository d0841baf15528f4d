package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/bayou-pubsub/bayou/bayeux"
)

// The error codes of the API, sent in {"error":{"code":...}}.
const (
	codeBadRequest       = "bad_request"        // 400
	codeUnauthorized     = "unauthorized"       // 401
	codeForbidden        = "forbidden"          // 403
	codeNotFound         = "not_found"          // 404
	codeNoHistory        = "no_history"         // 404
	codeMethodNotAllowed = "method_not_allowed" // 405
	codeTooLarge         = "too_large"          // 413
	codeRejected         = "rejected"           // 422
	codeInternal         = "internal"           // 500
	codeUnavailable      = "unavailable"        // 503
)

// apiError is an error with the HTTP status and code it is answered with.
type apiError struct {
	status  int
	code    string
	message string
	err     error // the cause, if any
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func (e *apiError) Unwrap() error { return e.err }

func errBadRequest(msg string) *apiError {
	return &apiError{status: http.StatusBadRequest, code: codeBadRequest, message: msg}
}

func errNotFound(msg string) *apiError {
	return &apiError{status: http.StatusNotFound, code: codeNotFound, message: msg}
}

// errNoHistory answers a history request for a channel whose history is
// not kept (bayeux.ErrNoHistory).
func errNoHistory(msg string) *apiError {
	return &apiError{status: http.StatusNotFound, code: codeNoHistory, message: msg}
}

// errorBody is the JSON of an error, alone or in a batch result.
type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// classify maps any error a handler or the server returns to its answer.
func classify(err error) *apiError {
	var ae *apiError
	var rejected *bayeux.RejectedError
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &rejected):
		return &apiError{status: http.StatusUnprocessableEntity, code: codeRejected, message: rejected.Message}
	case errors.Is(err, bayeux.ErrUnknownClient):
		return errNotFound(err.Error())
	case errors.As(err, &tooLarge):
		return &apiError{status: http.StatusRequestEntityTooLarge, code: codeTooLarge,
			message: "request body larger than " + strconv.FormatInt(tooLarge.Limit, 10) + " bytes"}
	case errors.Is(err, bayeux.ErrEngineClosed):
		return &apiError{status: http.StatusServiceUnavailable, code: codeUnavailable, message: err.Error()}
	default:
		return &apiError{status: http.StatusInternalServerError, code: codeInternal, message: err.Error()}
	}
}

// writeError answers err as {"error":{"code":...,"message":...}}. Server
// errors are logged.
func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ae := classify(err)
	if ae.status >= 500 {
		h.log.Error("api: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if ae.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="bayou"`)
	}
	writeJSON(w, ae.status, struct {
		Error errorBody `json:"error"`
	}{errorBody{Code: ae.code, Message: ae.message}})
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// The answers are not HTML (and are sent with nosniff): keep < > & as
	// they are.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only the API's own types are encoded: this is a bug.
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":{"code":"internal","message":"encoding the response failed"}}` + "\n")
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
