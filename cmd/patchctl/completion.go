package main

import (
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

type flagT = flag.Flag

// bashCompletion prints a bash completion script built from the command
// table: command words first, then the chosen command's flags and files.
func bashCompletion(w io.Writer) error {
	cmds := commands()
	next := map[string]map[string]bool{}
	for _, c := range cmds {
		words := strings.Fields(c.path)
		for i := range words {
			prefix := strings.Join(words[:i], " ")
			if next[prefix] == nil {
				next[prefix] = map[string]bool{}
			}
			next[prefix][words[i]] = true
		}
	}
	flagsOf := map[string][]string{}
	for _, c := range cmds {
		fs := flag.NewFlagSet(c.path, flag.ContinueOnError)
		var g globals
		g.register(fs)
		if c.flags != nil {
			c.flags(fs)
		}
		fs.VisitAll(func(f *flag.Flag) { flagsOf[c.path] = append(flagsOf[c.path], "--"+f.Name) })
	}
	var b strings.Builder
	b.WriteString("# bash completion for patchctl: source <(patchctl completion bash)\n_patchctl() {\n")
	b.WriteString("  local cur=${COMP_WORDS[COMP_CWORD]} path=\"\" w i\n")
	b.WriteString("  for ((i=1; i<COMP_CWORD; i++)); do w=${COMP_WORDS[i]}; [[ $w == -* ]] && continue; path=\"${path:+$path }$w\"; done\n")
	b.WriteString("  case \"$path\" in\n")
	keys := make([]string, 0, len(next))
	for k := range next {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		var ws []string
		for w := range next[k] {
			ws = append(ws, w)
		}
		sort.Strings(ws)
		fmt.Fprintf(&b, "    %q) COMPREPLY=($(compgen -W %q -- \"$cur\")); return;;\n", k, strings.Join(ws, " "))
	}
	for _, c := range cmds {
		fmt.Fprintf(&b, "    %q*) COMPREPLY=($(compgen -W %q -f -- \"$cur\")); return;;\n", c.path, strings.Join(flagsOf[c.path], " "))
	}
	b.WriteString("  esac\n}\ncomplete -o default -F _patchctl patchctl\n")
	_, err := io.WriteString(w, b.String())
	return err
}
