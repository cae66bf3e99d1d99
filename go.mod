module github.com/patchgate/patchgate

go 1.26

require (
	github.com/expr-lang/expr v1.17.8
	github.com/google/gopacket v1.1.19
	gopkg.in/yaml.v3 v3.0.1
)

require (
	golang.org/x/net v0.0.0-20190620200207-3b0461eec859 // indirect
	golang.org/x/sys v0.0.0-20190412213103-97732733099d // indirect
)
