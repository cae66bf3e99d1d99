// Package all links every protocol analyzer into a binary: import it for its
// side effect of registering them.
package all

import (
	// Each analyzer registers itself in its setup.go.
	_ "github.com/patchgate/patchgate/dataplane/analyzer/dns"
	_ "github.com/patchgate/patchgate/dataplane/analyzer/http"
	_ "github.com/patchgate/patchgate/dataplane/analyzer/smb"
	_ "github.com/patchgate/patchgate/dataplane/analyzer/tls"
)
