package console

import "net/http"

// extraConsumers are durable consumers of other stages the overview shows.
func (c *Console) extraConsumers() [][2]string { return nil }

func (c *Console) webhooks(w http.ResponseWriter, q request) {
	c.render(w, q, http.StatusOK, "webhooks.html", "Webhooks", "webhooks", nil, nil)
}

func (c *Console) webhook(w http.ResponseWriter, q request) {
	c.errorPage(w, q.r, http.StatusNotFound, "There is no such webhook endpoint.")
}

func (c *Console) resend(w http.ResponseWriter, q request) {
	c.errorPage(w, q.r, http.StatusNotFound, "There is no such webhook endpoint.")
}
