package httpkit

import (
	"encoding/json"
	"net/http"
)

// WriteJSON answers with status and v encoded as JSON: not to be sniffed
// as anything else and not to be cached, since admin answers describe a
// moment and may name clients.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteJSONError answers with status and {"error": msg}.
func WriteJSONError(w http.ResponseWriter, status int, msg string) {
	WriteJSON(w, status, struct {
		Error string `json:"error"`
	}{msg})
}
