package api

import (
	"sync"

	"github.com/patchgate/patchgate/api/pb"
)

// alertBuffer is the per-subscriber queue; a subscriber that falls further
// behind loses alerts (counted), never slows the packet path.
const alertBuffer = 256

// AlertHub fans a node's alerts out to TailAlerts streams. Publish never
// blocks; all methods are safe for concurrent use.
type AlertHub struct {
	mu      sync.Mutex
	subs    map[chan *pb.Alert]struct{}
	dropped uint64
}

// NewAlertHub returns a hub without subscribers.
func NewAlertHub() *AlertHub { return &AlertHub{subs: map[chan *pb.Alert]struct{}{}} }

// Publish hands a to every subscriber that has room.
func (h *AlertHub) Publish(a *pb.Alert) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- a:
		default:
			h.dropped++
		}
	}
}

// Subscribers returns the number of open subscriptions (publishers may skip
// building alerts when it is zero).
func (h *AlertHub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Subscribe returns a channel of alerts and a function that ends the
// subscription.
func (h *AlertHub) Subscribe() (<-chan *pb.Alert, func()) {
	ch := make(chan *pb.Alert, alertBuffer)
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.subs, ch)
		h.mu.Unlock()
	}
}
