package waf

import _ "embed"

// CVERules are SecRules (SecLang) equivalent to the shipped HTTP virtual
// patches, one rule per CVE (IDs 90101-90109, 90100 turns on body
// inspection for every content type). Coraza (bench/coraza) and
// nginx+ModSecurity (Run) load the same text. Where SecLang cannot express
// a patch's condition, the file's comments say so.
//
//go:embed cverules.conf
var CVERules string
