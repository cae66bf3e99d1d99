package patchset

import (
	"bytes"
	"fmt"
	"sort"
)

// Diff is the difference between two patch sets, by patch id.
type Diff struct {
	From, To uint64
	// Added are ids only in To, Removed only in From, Changed in both with
	// different file contents (or a different file name). All sorted.
	Added, Removed, Changed []string
	// Unchanged counts the patches identical in both.
	Unchanged int
}

// Empty reports whether the two sets hold the same patches.
func (d *Diff) Empty() bool { return len(d.Added)+len(d.Removed)+len(d.Changed) == 0 }

func (d *Diff) String() string {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "version %d -> %d: %d added, %d removed, %d changed, %d unchanged\n",
		d.From, d.To, len(d.Added), len(d.Removed), len(d.Changed), d.Unchanged)
	for _, s := range []struct {
		mark string
		ids  []string
	}{{"+", d.Added}, {"-", d.Removed}, {"~", d.Changed}} {
		for _, id := range s.ids {
			fmt.Fprintf(&buf, "  %s %s\n", s.mark, id)
		}
	}
	return buf.String()
}

type patchFile struct {
	name string
	data []byte
}

// byID maps patch id to its file; it parses every file.
func (b *Bundle) byID() (map[string]patchFile, error) {
	ps, err := b.Patches()
	if err != nil {
		return nil, err
	}
	data := make(map[string][]byte, len(b.Files))
	for _, f := range b.Files {
		data[f.Name] = f.Data
	}
	out := make(map[string]patchFile, len(ps))
	for _, p := range ps {
		if _, dup := out[p.ID]; dup {
			return nil, fmt.Errorf("patchset: version %d: duplicate patch id %s", b.Manifest.Version, p.ID)
		}
		out[p.ID] = patchFile{name: p.File, data: data[p.File]}
	}
	return out, nil
}

// Compare returns the patches added, removed and changed from a to b.
func Compare(a, b *Bundle) (*Diff, error) {
	pa, err := a.byID()
	if err != nil {
		return nil, err
	}
	pb, err := b.byID()
	if err != nil {
		return nil, err
	}
	d := &Diff{From: a.Manifest.Version, To: b.Manifest.Version}
	for id, fb := range pb {
		fa, ok := pa[id]
		switch {
		case !ok:
			d.Added = append(d.Added, id)
		case fa.name != fb.name || !bytes.Equal(fa.data, fb.data):
			d.Changed = append(d.Changed, id)
		default:
			d.Unchanged++
		}
	}
	for id := range pa {
		if _, ok := pb[id]; !ok {
			d.Removed = append(d.Removed, id)
		}
	}
	sort.Strings(d.Added)
	sort.Strings(d.Removed)
	sort.Strings(d.Changed)
	return d, nil
}
