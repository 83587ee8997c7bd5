/* Generated from sockcap/pipeline/contract.py by scripts/engine_header.py:
 * do not edit; change the Python definitions and run the script. */
#ifndef SOCKCAP_ENGINE_CONTRACT_H
#define SOCKCAP_ENGINE_CONTRACT_H

#define STYLE_WIRESHARK 0
#define STYLE_JSON 1
#define STYLE_TCPDUMP 2
#define COLOR_CLIENT 8
#define COLOR_SERVER 9
#define COLOR_NOTES 10
#define COLOR_DIM 11
#define COLOR_EXPLAIN 12
#define COLOR_COUNT 13
#define F_FIN 0x1
#define F_SYN 0x2
#define F_RST 0x4
#define F_PSH 0x8
#define F_ACK 0x10
#define F_URG 0x20
#define F_ECE 0x40
#define F_CWR 0x80
#define F_AE 0x100
#define ECN_BITS 0x1c0
#define A_ACK_LOST_PACKET 0x4
#define A_DUPLICATE_ACK 0x10
#define A_FAST_RETRANSMISSION 0x400
#define A_KEEP_ALIVE 0x8
#define A_KEEP_ALIVE_ACK 0x100
#define A_LOST_PACKET 0x2
#define A_OUT_OF_ORDER 0x200
#define A_RETRANSMISSION 0x1
#define A_SPURIOUS_RETRANSMISSION 0x2000
#define A_WINDOW_FULL 0x1000
#define A_WINDOW_UPDATE 0x800
#define A_ZERO_WINDOW 0x20
#define A_ZERO_WINDOW_PROBE 0x40
#define A_ZERO_WINDOW_PROBE_ACK 0x80
#define RESENT 0x2601
#define FAST_RETRANSMISSION_NS 20000000
#define OUT_OF_ORDER_NS 3000000
#define MPTCP_DSS 2
#define MPTCP_DSS_MAPPING 4
#define DELAYED_NS 20000000
#define RELEASED_NS 10000000
#define ETHERNET_MTU 1500
#define SMALLEST_MTU_PAYLOAD 1160
#define NO_ADDRESS (-2)
#define RETIRE_AFTER 4096
#define TCPDUMP_WINDOW 262144
#define RETIRE_IDLE_NS 10000000000LL
#define RETIRE_MAX 16384
#define INACTIVE_NS 300000000000LL
#define SCALE_UNKNOWN (-1)
#define SCALE_NONE (-2)
#define MAX_WSCALE 14
#define PREVIEW_CHARS 24
#define L2TP_PORT 1701
#define TCP_OFFSET_BYTE 12
#define ETHERTYPE_IPV4 2048
#define ETHERTYPE_IPV6 34525
#define OPT_EOL 0
#define OPT_NOP 1
#define OPT_MSS 2
#define OPT_WSCALE 3
#define OPT_SACK_PERMITTED 4
#define OPT_SACK 5
#define OPT_TIMESTAMPS 8
#define OPT_MD5 19
#define OPT_TCP_AO 29
#define OPT_MPTCP 30
#define OPT_FAST_OPEN 34
#define OPT_ACCECN0 172
#define OPT_ACCECN1 174
#define LINKTYPE_ETHERNET 1
#define LINK_HEADER_LEN_ETHERNET 14
#define LINKTYPE_IPV4 228
#define LINK_HEADER_LEN_IPV4 0
#define LINKTYPE_IPV6 229
#define LINK_HEADER_LEN_IPV6 0
#define LINKTYPE_LINUX_SLL 113
#define LINK_HEADER_LEN_LINUX_SLL 16
#define LINKTYPE_LINUX_SLL2 276
#define LINK_HEADER_LEN_LINUX_SLL2 20
#define LINKTYPE_LOOP 108
#define LINK_HEADER_LEN_LOOP 4
#define LINKTYPE_NULL 0
#define LINK_HEADER_LEN_NULL 4
#define LINKTYPE_RAW 101
#define LINK_HEADER_LEN_RAW 0
#define LINKTYPE_RAW_BSD_0 12
#define LINK_HEADER_LEN_RAW_BSD_0 0
#define LINKTYPE_RAW_BSD_1 14
#define LINK_HEADER_LEN_RAW_BSD_1 0

/* NULL/LOOP address families and their ethertypes (decode.link) */
static const int FAMILY_ETHERTYPES[][2] = {{2, 0x0800}, {24, 0x86dd}, {28, 0x86dd}, {30, 0x86dd}};
#define N_FAMILY_ETHERTYPES 4

/* decode.transport.tcp_header_len: a TCP header's length from its data-offset byte (tcp: the header's first byte) */
#define TCP_HEADER_LEN(tcp) ((int64_t)((tcp)[TCP_OFFSET_BYTE] >> 4) * 4)

/* counted note kinds (contract.COUNTED_KINDS) */
enum { N_RETRANSMISSION, N_SYN_RETRANSMITTED, N_SPURIOUS_RETRANSMISSION, N_FAST_RETRANSMISSION, N_OUT_OF_ORDER, N_LOST_SEGMENT, N_ACKED_UNSEEN, N_DUPLICATE_ACK, N_ZERO_WINDOW, N_ZERO_WINDOW_PROBE, N_ZERO_WINDOW_PROBE_ACK, N_WINDOW_FULL, N_WINDOW_UPDATE, N_KEEP_ALIVE, N_KEEP_ALIVE_ACK, N_CONNECTION_REFUSED, N_CONNECTION_RESET, N_HALF_CLOSE, N_PORT_UNREACHABLE, N_UNREACHABLE, N_PORT_REUSE, N_WINDOW_SCALE_UNKNOWN, N_TIME_WAIT, N_PARTIAL_CHECKSUM, N_LARGER_THAN_MTU, N_PART_OF_MESSAGE, N_NAGLE_STALL, N_KINDS };
static const int FLAG_NOTES[][2] = {{A_RETRANSMISSION, N_RETRANSMISSION}, {A_FAST_RETRANSMISSION, N_FAST_RETRANSMISSION}, {A_SPURIOUS_RETRANSMISSION, N_SPURIOUS_RETRANSMISSION}, {A_OUT_OF_ORDER, N_OUT_OF_ORDER}, {A_LOST_PACKET, N_LOST_SEGMENT}, {A_ACK_LOST_PACKET, N_ACKED_UNSEEN}, {A_WINDOW_UPDATE, N_WINDOW_UPDATE}, {A_WINDOW_FULL, N_WINDOW_FULL}, {A_KEEP_ALIVE, N_KEEP_ALIVE}, {A_KEEP_ALIVE_ACK, N_KEEP_ALIVE_ACK}, {A_ZERO_WINDOW, N_ZERO_WINDOW}, {A_ZERO_WINDOW_PROBE, N_ZERO_WINDOW_PROBE}, {A_ZERO_WINDOW_PROBE_ACK, N_ZERO_WINDOW_PROBE_ACK}};
#define N_FLAG_NOTES 13
#define N_FIRST_CONFUSION N_PORT_REUSE

enum { PH_NONE, PH_HANDSHAKE_1, PH_HANDSHAKE_2, PH_HANDSHAKE_3, PH_DATA, PH_ACK, PH_TEARDOWN, PH_RESET, PH_COUNT };
enum { ROLES_FROM_SYN, ROLES_GUESSED, ROLES_FIRST_SENDER, ROLES_COUNT };
enum { END_NONE, END_REFUSED, END_RESET, END_CLOSED, END_HALF_CLOSED, END_OPEN, END_UNANSWERED, END_COUNT };

enum { PACKET_TS_NS, PACKET_LINKTYPE, PACKET_WIRELEN, PACKET_DATA, PACKET_NET, PACKET_SRC, PACKET_DST, PACKET_PROTO, PACKET_SPORT, PACKET_DPORT, PACKET_SEQ, PACKET_ACK, PACKET_FLAGS, PACKET_WINDOW, PACKET_OPTIONS, PACKET_PAYLOAD_OFF, PACKET_PAYLOAD_LEN, PACKET_TRUNCATED, PACKET_NOTES, PACKET_IP_ID, PACKET_TTL, PACKET_FRAGMENT, PACKET_TUNNEL, PACKET_FIELDS };
enum { FRAME_TS_NS, FRAME_LINKTYPE, FRAME_DATA, FRAME_WIRELEN, FRAME_INTERFACE, FRAME_FIELDS };
enum { OPTION_KIND, OPTION_VALUE, OPTION_FIELDS };
enum { INTERFACE_LINKTYPE, INTERFACE_SNAPLEN, INTERFACE_MULT, INTERFACE_DIV, INTERFACE_OFFSET_NS, INTERFACE_FIELDS };
enum { ROW_PROTO, ROW_STREAM, ROW_CLIENT, ROW_SERVER, ROW_ROLES, ROW_PACKETS, ROW_BYTES, ROW_PAYLOAD, ROW_START_NS, ROW_DURATION_NS, ROW_IRTT_NS, ROW_NOTES, ROW_ENDED, ROW_FIELDS };

/* templates filled by placeholder name (contract.TEMPLATES) */
enum { T_DUPLICATE_ACK, T_LARGER_THAN_MTU, T_NAGLE_STALL, T_GUESSED_ROLES, T_FROM_CLIENT, T_FROM_SERVER, T_COUNT };
static const char *const T_DUPLICATE_ACK_PLACES[] = {"n", 0};
static const char *const T_LARGER_THAN_MTU_PLACES[] = {"n", 0};
static const char *const T_NAGLE_STALL_PLACES[] = {"n", 0};
static const char *const T_GUESSED_ROLES_PLACES[] = {"stream", "server", 0};
static const char *const T_FROM_CLIENT_PLACES[] = {"client", "server", 0};
static const char *const T_FROM_SERVER_PLACES[] = {"client", "server", 0};
static const char *const *const TEMPLATE_PLACES[] = {T_DUPLICATE_ACK_PLACES, T_LARGER_THAN_MTU_PLACES, T_NAGLE_STALL_PLACES, T_GUESSED_ROLES_PLACES, T_FROM_CLIENT_PLACES, T_FROM_SERVER_PLACES};

/* --explain's sentences (render.explain_words), its cases and Zeek's states */
enum { E_UDP, E_INVALID_FLAGS, E_COPY, E_REFUSED, E_RESET_DATA, E_RESET, E_SYN_AGAIN, E_SYN_DATA, E_SYN, E_SYN_ACK_AGAIN, E_SYN_ACK_DATA, E_SYN_ACK, E_OUT_OF_ORDER, E_SPURIOUS, E_FIN_AGAIN, E_FAST, E_SACK_RECOVERY, E_TIMEOUT, E_FIN_ACKS_FIN, E_FIN_LAST_ACK, E_FIN_DATA, E_FIN, E_HANDSHAKE_ACK, E_ZERO_WINDOW, E_ZERO_WINDOW_PROBE, E_ZERO_WINDOW_PROBE_KEEP_ALIVE, E_KEEP_ALIVE, E_DSACK, E_FASTCLOSE, E_FIN_ACK_AGAIN_TIME_WAIT, E_FIN_ACK_AGAIN, E_DUPLICATE_ACK_SACK, E_DUPLICATE_ACK, E_ACK_DATA, E_ACK_FIN, E_ACK_BYTES_FIN, E_ACK_BYTES, E_ACK, E_DATA_ACKED_DATA, E_DATA_ACKED_BYTES_FIN, E_DATA_ACKED_FIN, E_DATA_ACKED_BYTES, E_DATA, E_WINDOW_SACK, E_WINDOW_SMALLER, E_WINDOW_LARGER, E_C_PARTIAL_CHECKSUM, E_C_LARGER_THAN_MTU, E_C_WINDOW_SCALE_UNKNOWN, E_C_PART_OF_MESSAGE, E_C_NAGLE_STALL, E_C_TIME_WAIT, E_C_PORT_REUSE, E_COUNT };
static const char *const E_UDP_PLACES[] = {"side", "length", "preview", 0};
static const char *const E_INVALID_FLAGS_PLACES[] = {"side", "flags", 0};
static const char *const E_COPY_PLACES[] = {"no", "ms", "id", "side", 0};
static const char *const E_REFUSED_PLACES[] = {"port", "side", 0};
static const char *const E_RESET_DATA_PLACES[] = {"side", "other", "length", "preview", 0};
static const char *const E_RESET_PLACES[] = {"side", "other", 0};
static const char *const E_SYN_AGAIN_PLACES[] = {"side", 0};
static const char *const E_SYN_DATA_PLACES[] = {"side", "length", "preview", "isn", 0};
static const char *const E_SYN_PLACES[] = {"side", "isn", 0};
static const char *const E_SYN_ACK_AGAIN_PLACES[] = {"side", 0};
static const char *const E_SYN_ACK_DATA_PLACES[] = {"side", "isn", "ack", "length", 0};
static const char *const E_SYN_ACK_PLACES[] = {"side", "isn", "ack", 0};
static const char *const E_OUT_OF_ORDER_PLACES[] = {"side", "length", "seq", 0};
static const char *const E_SPURIOUS_PLACES[] = {"side", "length", "seq", "other", "acked", 0};
static const char *const E_FIN_AGAIN_PLACES[] = {"side", "seq", 0};
static const char *const E_FAST_PLACES[] = {"side", "length", "seq", "count", 0};
static const char *const E_SACK_RECOVERY_PLACES[] = {"side", "length", "seq", 0};
static const char *const E_TIMEOUT_PLACES[] = {"side", "length", "seq", 0};
static const char *const E_FIN_ACKS_FIN_PLACES[] = {"side", "fin", "ack", "pfin", "other", 0};
static const char *const E_FIN_LAST_ACK_PLACES[] = {"side", "fin", "other", 0};
static const char *const E_FIN_DATA_PLACES[] = {"side", "length", "preview", "seq", "fin", 0};
static const char *const E_FIN_PLACES[] = {"side", "seq", 0};
static const char *const E_HANDSHAKE_ACK_PLACES[] = {"side", "ack", 0};
static const char *const E_ZERO_WINDOW_PLACES[] = {"side", "other", 0};
static const char *const E_ZERO_WINDOW_PROBE_PLACES[] = {"side", 0};
static const char *const E_ZERO_WINDOW_PROBE_KEEP_ALIVE_PLACES[] = {"side", "other", "seq", 0};
static const char *const E_KEEP_ALIVE_PLACES[] = {"side", "other", "seq", 0};
static const char *const E_DSACK_PLACES[] = {"side", "ack", "left", "right", "other", 0};
static const char *const E_FASTCLOSE_PLACES[] = {"side", "ack", 0};
static const char *const E_FIN_ACK_AGAIN_TIME_WAIT_PLACES[] = {"side", "other", "ack", "fin", 0};
static const char *const E_FIN_ACK_AGAIN_PLACES[] = {"side", "other", "ack", "fin", 0};
static const char *const E_DUPLICATE_ACK_SACK_PLACES[] = {"side", "ack", "blocks", 0};
static const char *const E_DUPLICATE_ACK_PLACES[] = {"side", "ack", 0};
static const char *const E_ACK_DATA_PLACES[] = {"side", "count", "acked", "ack", "start", 0};
static const char *const E_ACK_FIN_PLACES[] = {"side", "other", "ack", "start", 0};
static const char *const E_ACK_BYTES_FIN_PLACES[] = {"side", "count", "other", "ack", "start", 0};
static const char *const E_ACK_BYTES_PLACES[] = {"side", "count", "ack", "start", 0};
static const char *const E_ACK_PLACES[] = {"side", "ack", 0};
static const char *const E_DATA_ACKED_DATA_PLACES[] = {"side", "length", "preview", "seq", "count", "acked", "ack", "start", 0};
static const char *const E_DATA_ACKED_BYTES_FIN_PLACES[] = {"side", "length", "preview", "seq", "count", "other", "ack", "start", 0};
static const char *const E_DATA_ACKED_FIN_PLACES[] = {"side", "length", "preview", "seq", "other", "ack", "start", 0};
static const char *const E_DATA_ACKED_BYTES_PLACES[] = {"side", "length", "preview", "seq", "count", "ack", "start", 0};
static const char *const E_DATA_PLACES[] = {"side", "length", "preview", "seq", "next", 0};
static const char *const E_WINDOW_SACK_PLACES[] = {"side", "window", "ack", "blocks", 0};
static const char *const E_WINDOW_SMALLER_PLACES[] = {"side", "window", "before", 0};
static const char *const E_WINDOW_LARGER_PLACES[] = {"side", "window", "before", 0};
static const char *const E_C_PARTIAL_CHECKSUM_PLACES[] = {"checksum", "real", 0};
static const char *const E_C_LARGER_THAN_MTU_PLACES[] = {"size", "mtu", "length", "count", "segment", 0};
static const char *const E_C_WINDOW_SCALE_UNKNOWN_PLACES[] = {"window", 0};
static const char *const E_C_PART_OF_MESSAGE_PLACES[] = {0};
static const char *const E_C_NAGLE_STALL_PLACES[] = {"side", "ms", "other", 0};
static const char *const E_C_TIME_WAIT_PLACES[] = {"side", "port", 0};
static const char *const E_C_PORT_REUSE_PLACES[] = {"stream", 0};
static const char *const *const EXPLAIN_PLACES[] = {E_UDP_PLACES, E_INVALID_FLAGS_PLACES, E_COPY_PLACES, E_REFUSED_PLACES, E_RESET_DATA_PLACES, E_RESET_PLACES, E_SYN_AGAIN_PLACES, E_SYN_DATA_PLACES, E_SYN_PLACES, E_SYN_ACK_AGAIN_PLACES, E_SYN_ACK_DATA_PLACES, E_SYN_ACK_PLACES, E_OUT_OF_ORDER_PLACES, E_SPURIOUS_PLACES, E_FIN_AGAIN_PLACES, E_FAST_PLACES, E_SACK_RECOVERY_PLACES, E_TIMEOUT_PLACES, E_FIN_ACKS_FIN_PLACES, E_FIN_LAST_ACK_PLACES, E_FIN_DATA_PLACES, E_FIN_PLACES, E_HANDSHAKE_ACK_PLACES, E_ZERO_WINDOW_PLACES, E_ZERO_WINDOW_PROBE_PLACES, E_ZERO_WINDOW_PROBE_KEEP_ALIVE_PLACES, E_KEEP_ALIVE_PLACES, E_DSACK_PLACES, E_FASTCLOSE_PLACES, E_FIN_ACK_AGAIN_TIME_WAIT_PLACES, E_FIN_ACK_AGAIN_PLACES, E_DUPLICATE_ACK_SACK_PLACES, E_DUPLICATE_ACK_PLACES, E_ACK_DATA_PLACES, E_ACK_FIN_PLACES, E_ACK_BYTES_FIN_PLACES, E_ACK_BYTES_PLACES, E_ACK_PLACES, E_DATA_ACKED_DATA_PLACES, E_DATA_ACKED_BYTES_FIN_PLACES, E_DATA_ACKED_FIN_PLACES, E_DATA_ACKED_BYTES_PLACES, E_DATA_PLACES, E_WINDOW_SACK_PLACES, E_WINDOW_SMALLER_PLACES, E_WINDOW_LARGER_PLACES, E_C_PARTIAL_CHECKSUM_PLACES, E_C_LARGER_THAN_MTU_PLACES, E_C_WINDOW_SCALE_UNKNOWN_PLACES, E_C_PART_OF_MESSAGE_PLACES, E_C_NAGLE_STALL_PLACES, E_C_TIME_WAIT_PLACES, E_C_PORT_REUSE_PLACES};
enum { W_UDP, W_INVALID_FLAGS, W_COPY, W_REFUSED, W_RESET, W_SYN, W_SYN_DATA, W_SYN_AGAIN, W_SYN_ACK, W_SYN_ACK_AGAIN, W_SPURIOUS, W_FAST, W_SACK_RECOVERY, W_TIMEOUT, W_FIN_AGAIN, W_OUT_OF_ORDER, W_FIN_ACKS_FIN, W_FIN_LAST_ACK, W_FIN_DATA, W_FIN, W_FIN_SHUTDOWN, W_FIN_CLOSE, W_HANDSHAKE_ACK, W_ZERO_WINDOW, W_ZERO_WINDOW_PROBE, W_KEEP_ALIVE, W_DSACK, W_FASTCLOSE, W_FIN_ACK_AGAIN, W_DUPLICATE_ACK, W_DUPLICATE_ACK_SACK, W_DATA, W_WINDOW_UPDATE, W_WINDOW_SACK, W_ACK, W_COUNT };
enum { ZS_S0, ZS_S1, ZS_SF, ZS_REJ, ZS_S2, ZS_S3, ZS_RSTO, ZS_RSTR, ZS_RSTOS0, ZS_RSTRH, ZS_SH, ZS_SHR, ZS_OTH, ZS_COUNT };
#define TUPLE_WINDOW 65536

#endif
