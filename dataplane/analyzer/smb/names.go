package smb

// SMB2 command codes (MS-SMB2 2.2.1).
const (
	smb2Negotiate      = 0x00
	smb2SessionSetup   = 0x01
	smb2TreeConnect    = 0x03
	smb2Read           = 0x08
	smb2Write          = 0x09
	smb2IOCTL          = 0x0B
	smb2NumCommands    = 0x14
	smb2FlagResponse   = 0x00000001
	smb2FlagAsync      = 0x00000002
	smb2FlagRelated    = 0x00000004
	smb2FlagSigned     = 0x00000008
	smb2HeaderSize     = 64
	dialect311         = 0x0311
	compressFlagChain  = 0x0001
	smb1HeaderSize     = 32
	smb1FlagReply      = 0x80
	smb1Flags2Signed   = 0x0004
	transformSize      = 52
	compressHeaderSize = 16
)

// SMB1 command codes used by the analyzer (MS-CIFS 2.2.2.1).
const (
	smb1Trans          = 0x25
	smb1TransSecondary = 0x26
	smb1Trans2         = 0x32
	smb1Trans2Second   = 0x33
	smb1NTTrans        = 0xA0
	smb1NTTransSecond  = 0xA1
)

// TRANS2 subcommands and information level that carry an OS/2 FEA list.
const (
	trans2Open2       = 0x0000
	trans2SetPathInfo = 0x0006
	trans2SetFileInfo = 0x0008
	trans2Mkdir       = 0x000D
	trans2QueryPath   = 0x0005
	trans2QueryFile   = 0x0007
	infoSetEAs        = 0x0002
)

// Compression algorithms (MS-SMB2 2.2.3.1.3).
const (
	algNone      = 0
	algLZNT1     = 1
	algLZ77      = 2
	algLZ77Huff  = 3
	algPatternV1 = 4
	algLZ4       = 5
)

var smb2Names = [smb2NumCommands]string{
	"NEGOTIATE", "SESSION_SETUP", "LOGOFF", "TREE_CONNECT", "TREE_DISCONNECT",
	"CREATE", "CLOSE", "FLUSH", "READ", "WRITE", "LOCK", "IOCTL", "CANCEL", "ECHO",
	"QUERY_DIRECTORY", "CHANGE_NOTIFY", "QUERY_INFO", "SET_INFO", "OPLOCK_BREAK",
	"SERVER_TO_CLIENT_NOTIFICATION",
}

func smb2Name(c uint16) string {
	if int(c) < len(smb2Names) {
		return smb2Names[c]
	}
	return "UNKNOWN"
}

func smb1Name(c byte) string {
	switch c {
	case 0x04:
		return "CLOSE"
	case 0x24:
		return "LOCKING_ANDX"
	case smb1Trans:
		return "TRANSACTION"
	case smb1TransSecondary:
		return "TRANSACTION_SECONDARY"
	case 0x2B:
		return "ECHO"
	case 0x2D:
		return "OPEN_ANDX"
	case 0x2E:
		return "READ_ANDX"
	case 0x2F:
		return "WRITE_ANDX"
	case smb1Trans2:
		return "TRANSACTION2"
	case smb1Trans2Second:
		return "TRANSACTION2_SECONDARY"
	case 0x71:
		return "TREE_DISCONNECT"
	case 0x72:
		return "NEGOTIATE"
	case 0x73:
		return "SESSION_SETUP_ANDX"
	case 0x74:
		return "LOGOFF_ANDX"
	case 0x75:
		return "TREE_CONNECT_ANDX"
	case smb1NTTrans:
		return "NT_TRANSACT"
	case smb1NTTransSecond:
		return "NT_TRANSACT_SECONDARY"
	case 0xA2:
		return "NT_CREATE_ANDX"
	case 0xA4:
		return "NT_CANCEL"
	}
	return "UNKNOWN"
}

func algorithmName(a uint16) string {
	switch a {
	case algNone:
		return "NONE"
	case algLZNT1:
		return "LZNT1"
	case algLZ77:
		return "LZ77"
	case algLZ77Huff:
		return "LZ77+Huffman"
	case algPatternV1:
		return "Pattern_V1"
	case algLZ4:
		return "LZ4"
	}
	return "UNKNOWN"
}

// algHasOriginalSize reports whether a chained payload of algorithm a carries
// the 4-byte OriginalPayloadSize field.
func algHasOriginalSize(a uint16) bool {
	return a == algLZNT1 || a == algLZ77 || a == algLZ77Huff || a == algLZ4
}

// primaryOf maps a transaction command (primary or secondary) to its primary.
func primaryOf(c byte) byte {
	switch c {
	case smb1TransSecondary:
		return smb1Trans
	case smb1Trans2Second:
		return smb1Trans2
	case smb1NTTransSecond:
		return smb1NTTrans
	}
	return c
}

func directionName(dir uint8) string {
	if dir == 0 {
		return "to_server"
	}
	return "to_client"
}
