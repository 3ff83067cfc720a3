//! Tests of `Connection`, named after the rule of RFC 6455 they check.

use super::*;
use proptest::prelude::*;

/// An owned copy of an event, so tests can collect them.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(u16, String),
    Failed(ProtocolError),
}

fn own(event: &Event<'_>) -> Ev {
    match *event {
        Event::Message {
            kind: MessageKind::Text,
            data,
            ..
        } => Ev::Text(String::from_utf8(data.to_vec()).expect("validated text")),
        Event::Message {
            kind: MessageKind::Binary,
            data,
            ..
        } => Ev::Binary(data.to_vec()),
        Event::Ping(d) => Ev::Ping(d.to_vec()),
        Event::Pong(d) => Ev::Pong(d.to_vec()),
        Event::Close { code, reason } => Ev::Close(code.0, reason.to_owned()),
        Event::Failed { error } => Ev::Failed(error),
    }
}

/// Feeds all of `bytes` at once and collects the events.
fn feed(conn: &mut Connection, bytes: &[u8]) -> Vec<Ev> {
    feed_chunked(conn, bytes, usize::MAX)
}

/// Feeds `bytes` in chunks of `size` and collects the events.
fn feed_chunked(conn: &mut Connection, bytes: &[u8], size: usize) -> Vec<Ev> {
    let mut events = Vec::new();
    for chunk in bytes.chunks(size.max(1)) {
        let mut buf = chunk.to_vec();
        let mut pos = 0;
        loop {
            let r = conn.receive(&mut buf[pos..]);
            pos += r.consumed;
            match r.event {
                Some(event) => events.push(own(&event)),
                None => break,
            }
        }
        assert_eq!(pos, buf.len(), "receive must consume all input");
    }
    events
}

/// A frame as a client sends it (masked).
fn masked(opcode: u8, fin: bool, rsv: u8, payload: &[u8]) -> Vec<u8> {
    frame(opcode, fin, rsv, payload, Some([0x37, 0xfa, 0x21, 0x3d]))
}

/// A frame as a server sends it (unmasked).
fn plain(opcode: u8, fin: bool, rsv: u8, payload: &[u8]) -> Vec<u8> {
    frame(opcode, fin, rsv, payload, None)
}

fn frame(opcode: u8, fin: bool, rsv: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![(fin as u8) << 7 | rsv << 4 | opcode];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => out.push(mask_bit | n as u8),
        n @ 126..=0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let start = out.len();
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
    let body = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        crate::frame::mask::apply_mask_reference(&mut out[body..], key, 0);
    }
    let _ = start;
    out
}

fn server() -> Connection {
    Connection::new(Role::Server, Config::default())
}

fn client() -> Connection {
    Connection::new(Role::Client, Config::default())
}

/// Decodes every frame in `bytes` (as the peer would see them): (opcode, fin, payload).
fn frames_in(bytes: &[u8]) -> Vec<(OpCode, bool, Vec<u8>)> {
    let mut frames = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (h, n) = FrameHeader::decode(rest).unwrap().expect("whole frame");
        let len = h.payload_len as usize;
        let mut payload = rest[n..n + len].to_vec();
        if let Some(key) = h.mask {
            apply_mask(&mut payload, key, 0);
        }
        frames.push((h.opcode, h.fin, payload));
        rest = &rest[n + len..];
    }
    frames
}

/// The close frame (code) queued in the output, if any.
fn queued_close(conn: &Connection) -> Option<u16> {
    frames_in(conn.pending_output())
        .into_iter()
        .find(|(op, _, _)| *op == OpCode::Close)
        .map(|(_, _, p)| u16::from_be_bytes([p[0], p[1]]))
}

fn assert_fails(role: Role, bytes: &[u8], error: ProtocolError, code: u16) {
    for size in [usize::MAX, 1] {
        let mut conn = Connection::new(role, Config::default());
        let events = feed_chunked(&mut conn, bytes, size);
        assert_eq!(
            events.last(),
            Some(&Ev::Failed(error)),
            "chunk size {size}: {events:?}"
        );
        assert_eq!(queued_close(&conn), Some(code));
        assert_eq!(conn.state(), State::Closed);
        assert!(conn.wants_transport_close());
        // Everything after the failure is discarded.
        assert_eq!(feed(&mut conn, &masked(1, true, 0, b"late")), vec![]);
    }
}

// --- Receiving data (RFC 6455 5.1, 5.6) ---

#[test]
fn server_receives_a_masked_text_frame_without_copying() {
    let mut conn = server();
    let mut bytes = masked(1, true, 0, b"Hello");
    let input_range = bytes.as_ptr_range();
    let r = conn.receive(&mut bytes);
    assert_eq!(r.consumed, 11);
    let event = r.event.expect("a message");
    assert_eq!(event.as_text(), Some("Hello"));
    match event {
        Event::Message { data, buffered, .. } => {
            assert!(!buffered);
            assert!(
                input_range.contains(&data.as_ptr()),
                "data borrows the input"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn client_receives_unmasked_binary_of_every_length_encoding() {
    for len in [0usize, 1, 125, 126, 65535, 65536, 1 << 20] {
        let payload: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        let mut conn = client();
        assert_eq!(
            feed(&mut conn, &plain(2, true, 0, &payload)),
            vec![Ev::Binary(payload)],
            "len {len}"
        );
    }
}

#[test]
fn a_frame_split_across_reads_is_delivered_once_complete() {
    let bytes = masked(2, true, 0, &[7u8; 300]);
    for size in 1..bytes.len() {
        let mut conn = server();
        assert_eq!(
            feed_chunked(&mut conn, &bytes, size),
            vec![Ev::Binary(vec![7u8; 300])],
            "chunk size {size}"
        );
    }
}

#[test]
fn fragmented_message_is_reassembled_with_control_frames_between_fragments() {
    let mut bytes = masked(1, false, 0, b"Hel");
    bytes.extend(masked(9, true, 0, b"are you there"));
    bytes.extend(masked(0, false, 0, b""));
    bytes.extend(masked(10, true, 0, b"pong"));
    bytes.extend(masked(0, true, 0, b"lo"));
    let expected = vec![
        Ev::Ping(b"are you there".to_vec()),
        Ev::Pong(b"pong".to_vec()),
        Ev::Text("Hello".into()),
    ];
    for size in [usize::MAX, 1, 2, 3, 5, 7] {
        let mut conn = server();
        assert_eq!(
            feed_chunked(&mut conn, &bytes, size),
            expected,
            "size {size}"
        );
        // The ping was answered with a pong carrying the same payload.
        let frames = frames_in(conn.pending_output());
        assert_eq!(
            frames,
            vec![(OpCode::Pong, true, b"are you there".to_vec())]
        );
    }
}

#[test]
fn text_split_inside_a_code_point_across_fragments_is_valid() {
    let text = "κόσμε𝄞".as_bytes();
    for at in 0..=text.len() {
        let mut bytes = masked(1, false, 0, &text[..at]);
        bytes.extend(masked(0, true, 0, &text[at..]));
        let mut conn = server();
        assert_eq!(feed(&mut conn, &bytes), vec![Ev::Text("κόσμε𝄞".into())]);
    }
}

#[test]
fn messages_before_a_bad_frame_are_delivered_before_the_failure() {
    let mut bytes = masked(1, true, 0, b"first");
    bytes.extend(masked(2, true, 0, b"second"));
    bytes.extend(masked(5, true, 0, b""));
    bytes.extend(masked(1, true, 0, b"never"));
    let mut conn = server();
    assert_eq!(
        feed(&mut conn, &bytes),
        vec![
            Ev::Text("first".into()),
            Ev::Binary(b"second".to_vec()),
            Ev::Failed(ProtocolError::ReservedOpcode(5)),
        ]
    );
}

// --- Frame rules that fail the connection with 1002 (RFC 6455 5.2-5.5) ---

#[test]
fn server_fails_on_unmasked_client_frame() {
    assert_fails(
        Role::Server,
        &plain(1, true, 0, b"hi"),
        ProtocolError::UnmaskedFrame,
        1002,
    );
}

#[test]
fn client_fails_on_masked_server_frame() {
    assert_fails(
        Role::Client,
        &masked(1, true, 0, b"hi"),
        ProtocolError::MaskedFrame,
        1002,
    );
}

#[test]
fn reserved_opcodes_fail_with_1002() {
    for op in (3..=7).chain(11..=15) {
        assert_fails(
            Role::Server,
            &masked(op, true, 0, b""),
            ProtocolError::ReservedOpcode(op),
            1002,
        );
    }
}

#[test]
fn reserved_bits_without_an_extension_fail_with_1002() {
    for rsv in 1..=7u8 {
        assert_fails(
            Role::Server,
            &masked(1, true, rsv, b"x"),
            ProtocolError::ReservedBits,
            1002,
        );
    }
}

#[test]
fn control_frame_longer_than_125_bytes_fails_with_1002() {
    assert_fails(
        Role::Server,
        &masked(9, true, 0, &[0u8; 126]),
        ProtocolError::ControlFrameTooLong,
        1002,
    );
}

#[test]
fn fragmented_control_frame_fails_with_1002() {
    assert_fails(
        Role::Server,
        &masked(9, false, 0, b"x"),
        ProtocolError::FragmentedControlFrame,
        1002,
    );
}

#[test]
fn length_with_the_top_bit_set_fails_with_1002() {
    let bytes = [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
    assert_fails(Role::Server, &bytes, ProtocolError::LengthTopBitSet, 1002);
}

#[test]
fn continuation_without_an_open_message_fails_with_1002() {
    assert_fails(
        Role::Server,
        &masked(0, true, 0, b"x"),
        ProtocolError::UnexpectedContinuation,
        1002,
    );
}

#[test]
fn new_data_frame_inside_a_fragmented_message_fails_with_1002() {
    let mut bytes = masked(1, false, 0, b"a");
    bytes.extend(masked(2, true, 0, b"b"));
    assert_fails(
        Role::Server,
        &bytes,
        ProtocolError::UnexpectedDataFrame,
        1002,
    );
}

// --- UTF-8 (RFC 6455 8.1) ---

#[test]
fn invalid_utf8_in_a_text_message_fails_with_1007() {
    assert_fails(
        Role::Server,
        &masked(1, true, 0, &[0x61, 0xC0, 0xAF]),
        ProtocolError::InvalidUtf8,
        1007,
    );
}

#[test]
fn invalid_utf8_fails_before_the_rest_of_the_frame_arrives() {
    // Autobahn 6.4.x: the bad byte comes first, the rest of the frame never does.
    let bytes = masked(
        1,
        true,
        0,
        &[0xCE, 0xBA, 0xED, 0xA0, 0x80, b'a', b'b', b'c'],
    );
    let mut conn = server();
    // Header (6 bytes) plus the first four payload bytes: ED A0 is already impossible.
    let events = feed(&mut conn, &bytes[..10]);
    assert_eq!(events, vec![Ev::Failed(ProtocolError::InvalidUtf8)]);
    assert_eq!(queued_close(&conn), Some(1007));
}

#[test]
fn invalid_utf8_in_a_later_fragment_fails_without_waiting_for_fin() {
    let mut bytes = masked(1, false, 0, b"ok");
    bytes.extend(masked(0, false, 0, &[0xF4, 0x90, 0x80, 0x80]));
    let mut conn = server();
    assert_eq!(
        feed(&mut conn, &bytes),
        vec![Ev::Failed(ProtocolError::InvalidUtf8)]
    );
}

#[test]
fn text_ending_inside_a_code_point_fails_with_1007() {
    let mut bytes = masked(1, false, 0, b"ok");
    bytes.extend(masked(0, true, 0, &[0xE2, 0x82]));
    assert_fails(Role::Server, &bytes, ProtocolError::InvalidUtf8, 1007);
}

#[test]
fn binary_messages_are_not_checked_for_utf8() {
    let mut conn = server();
    assert_eq!(
        feed(&mut conn, &masked(2, true, 0, &[0xFF, 0xC0])),
        vec![Ev::Binary(vec![0xFF, 0xC0])]
    );
}

// --- Limits (1009) ---

#[test]
fn frame_above_the_frame_limit_fails_with_1009_before_its_payload_arrives() {
    let config = Config {
        max_frame_size: 100,
        ..Config::default()
    };
    let mut conn = Connection::new(Role::Server, config);
    let bytes = masked(2, true, 0, &[0u8; 101]);
    // The header alone is enough to refuse it.
    assert_eq!(
        feed(&mut conn, &bytes[..8]),
        vec![Ev::Failed(ProtocolError::FrameTooBig)]
    );
    assert_eq!(queued_close(&conn), Some(1009));
}

#[test]
fn message_above_the_message_limit_fails_with_1009() {
    let config = Config {
        max_message_size: 10,
        ..Config::default()
    };
    let mut conn = Connection::new(Role::Server, config);
    let mut bytes = masked(2, false, 0, &[0u8; 6]);
    bytes.extend(masked(0, true, 0, &[0u8; 6]));
    assert_eq!(
        feed(&mut conn, &bytes),
        vec![Ev::Failed(ProtocolError::MessageTooBig)]
    );
    assert_eq!(queued_close(&conn), Some(1009));
}

#[test]
fn many_small_fragments_are_fine_when_the_bytes_fit() {
    // Autobahn 9.3/9.4: the limit is on bytes, not on fragment counts.
    let mut bytes = masked(2, false, 0, b"");
    for _ in 0..10_000 {
        bytes.extend(masked(0, false, 0, b"abcd"));
    }
    bytes.extend(masked(0, true, 0, b""));
    let mut conn = server();
    assert_eq!(
        feed(&mut conn, &bytes),
        vec![Ev::Binary(b"abcd".repeat(10_000))]
    );
}

// --- Close (RFC 6455 5.5.1, 7) ---

#[test]
fn close_is_answered_with_the_same_code() {
    let mut payload = 1001u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"bye");
    let mut conn = server();
    assert_eq!(
        feed(&mut conn, &masked(8, true, 0, &payload)),
        vec![Ev::Close(1001, "bye".into())]
    );
    assert_eq!(queued_close(&conn), Some(1001));
    assert_eq!(conn.state(), State::Closed);
    assert!(conn.wants_transport_close());
    assert_eq!(conn.send_text("late"), Err(SendError::Closed));
}

#[test]
fn empty_close_reports_1005_and_is_answered_with_1000() {
    let mut conn = client();
    assert_eq!(
        feed(&mut conn, &plain(8, true, 0, b"")),
        vec![Ev::Close(1005, String::new())]
    );
    assert_eq!(queued_close(&conn), Some(1000));
    assert_eq!(conn.peer_close(), Some((CloseCode::NO_STATUS, "")));
}

#[test]
fn close_with_a_one_byte_payload_fails_with_1002() {
    assert_fails(
        Role::Server,
        &masked(8, true, 0, &[0x03]),
        ProtocolError::CloseFrameTooShort,
        1002,
    );
}

#[test]
fn close_codes_that_may_not_be_sent_fail_with_1002() {
    for code in [
        0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
    ] {
        assert_fails(
            Role::Server,
            &masked(8, true, 0, &code.to_be_bytes()),
            ProtocolError::InvalidCloseCode(code),
            1002,
        );
    }
}

#[test]
fn valid_close_codes_are_accepted() {
    for code in [
        1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
    ] {
        let mut conn = server();
        assert_eq!(
            feed(&mut conn, &masked(8, true, 0, &code.to_be_bytes())),
            vec![Ev::Close(code, String::new())],
            "code {code}"
        );
    }
}

#[test]
fn close_reason_that_is_not_utf8_fails_with_1007() {
    let mut payload = 1000u16.to_be_bytes().to_vec();
    payload.extend_from_slice(&[0xCE, 0xBA, 0xE1, 0xBD]);
    assert_fails(
        Role::Server,
        &masked(8, true, 0, &payload),
        ProtocolError::InvalidUtf8,
        1007,
    );
}

#[test]
fn nothing_is_sent_after_our_close() {
    let mut conn = server();
    conn.close(1000, "done").unwrap();
    assert_eq!(conn.state(), State::Closing);
    assert!(!conn.wants_transport_close());
    assert_eq!(conn.send_text("x"), Err(SendError::Closed));
    assert_eq!(conn.send_ping(b""), Err(SendError::Closed));
    assert_eq!(conn.close(1000, ""), Err(SendError::Closed));
    // A ping that arrives now is reported but not answered (no frame after close).
    let before = conn.pending_output().len();
    assert_eq!(
        feed(&mut conn, &masked(9, true, 0, b"p")),
        vec![Ev::Ping(b"p".to_vec())]
    );
    assert_eq!(conn.pending_output().len(), before);
    // The peer's close completes the handshake; no second close is queued.
    assert_eq!(
        feed(&mut conn, &masked(8, true, 0, &1000u16.to_be_bytes())),
        vec![Ev::Close(1000, String::new())]
    );
    assert_eq!(conn.state(), State::Closed);
    let closes = frames_in(conn.pending_output())
        .into_iter()
        .filter(|(op, _, _)| *op == OpCode::Close)
        .count();
    assert_eq!(closes, 1);
}

#[test]
fn simultaneous_close_from_both_sides_completes() {
    let mut c = client();
    let mut s = server();
    c.close(1000, "client").unwrap();
    s.close(1001, "server").unwrap();
    let from_client = c.pending_output().to_vec();
    let from_server = s.pending_output().to_vec();
    c.consume(from_client.len());
    s.consume(from_server.len());
    assert_eq!(
        feed(&mut s, &from_client),
        vec![Ev::Close(1000, "client".into())]
    );
    assert_eq!(
        feed(&mut c, &from_server),
        vec![Ev::Close(1001, "server".into())]
    );
    for conn in [&c, &s] {
        assert_eq!(conn.state(), State::Closed);
        assert!(conn.pending_output().is_empty(), "no second close frame");
    }
}

#[test]
fn sending_refuses_close_codes_that_may_not_be_sent() {
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 2000, 5000] {
        assert_eq!(
            server().close(code, ""),
            Err(SendError::InvalidCloseCode(code))
        );
    }
    assert_eq!(
        server().close(1000, &"x".repeat(124)),
        Err(SendError::ControlPayloadTooLong)
    );
    assert!(server().close(1000, &"x".repeat(123)).is_ok());
}

// --- Sending (RFC 6455 5.1-5.4) ---

#[test]
fn client_to_server_round_trip_at_every_length_encoding() {
    for len in [0usize, 1, 125, 126, 65535, 65536, 1 << 20] {
        let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut c = client();
        c.send_binary(&payload).unwrap();
        let text = "é".repeat(len / 2);
        c.send_text(&text).unwrap();
        let bytes = c.pending_output().to_vec();
        let mut s = server();
        assert_eq!(
            feed(&mut s, &bytes),
            vec![Ev::Binary(payload.clone()), Ev::Text(text.clone())]
        );
        s.send_binary(&payload).unwrap();
        let back = s.pending_output().to_vec();
        assert_eq!(feed(&mut c, &back), vec![Ev::Binary(payload)]);
    }
}

#[test]
fn client_frames_are_masked_with_fresh_keys_and_server_frames_are_not() {
    let mut c = client();
    c.send_binary(b"same").unwrap();
    c.send_binary(b"same").unwrap();
    let out = c.pending_output();
    let (h1, n1) = FrameHeader::decode(out).unwrap().unwrap();
    let (h2, _) = FrameHeader::decode(&out[n1 + 4..]).unwrap().unwrap();
    assert!(h1.mask.is_some() && h2.mask.is_some());
    assert_ne!(h1.mask, h2.mask);
    let mut s = server();
    s.send_binary(b"same").unwrap();
    assert_eq!(s.pending_output(), &[0x82, 4, b's', b'a', b'm', b'e']);
}

#[test]
fn sending_text_that_is_not_utf8_is_refused() {
    let mut c = client();
    assert_eq!(
        c.send_message(MessageKind::Text, &[0xC0], true),
        Err(SendError::InvalidUtf8)
    );
    assert!(c.pending_output().is_empty());
}

/// Every ping is answered while the peer reads (Autobahn 2.10, 2.11 expect all pongs).
#[test]
fn every_ping_gets_its_pong_while_the_output_is_read() {
    let mut conn = server();
    let mut pings = Vec::new();
    for i in 0..50u8 {
        pings.extend(masked(9, true, 0, &[i; 125]));
    }
    assert_eq!(feed(&mut conn, &pings).len(), 50);
    let pongs: Vec<_> = frames_in(conn.pending_output())
        .into_iter()
        .map(|(op, _, p)| (op, p[0]))
        .collect();
    assert_eq!(
        pongs,
        (0..50).map(|i| (OpCode::Pong, i)).collect::<Vec<_>>()
    );
}

/// RFC 6455 5.5.3: of several pings not yet answered, only the most recent needs a pong. A
/// peer that floods pings and never reads must not make the output grow with every ping.
#[test]
fn a_ping_flood_from_a_peer_that_never_reads_is_answered_within_a_bounded_backlog() {
    for mut conn in [server(), client()] {
        let mut flood = Vec::new();
        let peer_mask = conn.role() == Role::Server;
        for i in 0..10_000u32 {
            let payload = [&i.to_be_bytes()[..], &[b'x'; 121]].concat();
            flood.extend(if peer_mask {
                masked(9, true, 0, &payload)
            } else {
                plain(9, true, 0, &payload)
            });
        }
        let events = feed_chunked(&mut conn, &flood, 4096);
        assert_eq!(events.len(), 10_000, "every ping is still reported");
        assert!(conn.buffered_amount() <= PONG_BACKLOG + 135);
        let frames = frames_in(conn.pending_output());
        assert!(frames.iter().all(|f| f.0 == OpCode::Pong));
        let last = frames.last().expect("a pong");
        assert_eq!(&last.2[..4], &9_999u32.to_be_bytes(), "the latest ping's");
    }
}

/// Pings until the unsent output reaches the backlog where pongs start to be replaced.
fn fill_pong_backlog(conn: &mut Connection) {
    while conn.buffered_amount() < PONG_BACKLOG {
        feed(conn, &masked(9, true, 0, &[b'f'; 125]));
    }
}

#[test]
fn a_pong_already_being_written_is_not_replaced() {
    let mut conn = server();
    fill_pong_backlog(&mut conn);
    feed(&mut conn, &masked(9, true, 0, b"first"));
    // The transport takes everything up to and including the first byte of that pong.
    let first = 2 + b"first".len();
    conn.consume(conn.buffered_amount() - first + 1);
    feed(&mut conn, &masked(9, true, 0, b"second"));
    feed(&mut conn, &masked(9, true, 0, b"third"));
    let mut out = vec![0x8a]; // the byte already written
    out.extend_from_slice(conn.pending_output());
    let pongs: Vec<_> = frames_in(&out).into_iter().map(|f| f.2).collect();
    assert_eq!(
        pongs,
        vec![b"first".to_vec(), b"second".to_vec(), b"third".to_vec()],
        "under the backlog again: every ping answered"
    );
}

#[test]
fn over_the_backlog_a_pong_behind_other_output_is_kept_and_order_holds() {
    let mut conn = server();
    fill_pong_backlog(&mut conn);
    feed(&mut conn, &masked(9, true, 0, b"one"));
    conn.send_text("between").unwrap();
    feed(&mut conn, &masked(9, true, 0, b"two"));
    feed(&mut conn, &masked(9, true, 0, b"three"));
    let all = frames_in(conn.pending_output());
    let frames: Vec<_> = all[all.len() - 3..]
        .iter()
        .map(|(op, _, p)| (*op, p.clone()))
        .collect();
    assert_eq!(
        frames,
        vec![
            (OpCode::Pong, b"one".to_vec()),
            (OpCode::Text, b"between".to_vec()),
            (OpCode::Pong, b"three".to_vec()),
        ]
    );
}

#[test]
fn ping_payload_longer_than_125_bytes_is_refused() {
    assert_eq!(
        client().send_ping(&[0; 126]),
        Err(SendError::ControlPayloadTooLong)
    );
    assert!(client().send_ping(&[0; 125]).is_ok());
}

#[test]
fn streamed_message_is_sent_as_fragments_with_control_frames_between() {
    let mut c = client();
    assert_eq!(
        c.send_fragment(b"x", true),
        Err(SendError::NoMessageInProgress)
    );
    c.begin_message(MessageKind::Text, false).unwrap();
    let text = "κόσμε".as_bytes();
    c.send_fragment(&text[..1], false).unwrap(); // ends inside a code point
    assert_eq!(c.send_text("no"), Err(SendError::MessageInProgress));
    assert_eq!(
        c.begin_message(MessageKind::Binary, false),
        Err(SendError::MessageInProgress)
    );
    c.send_ping(b"between").unwrap();
    assert_eq!(c.send_fragment(&[0xFF], false), Err(SendError::InvalidUtf8));
    c.send_fragment(&text[1..], true).unwrap();
    let frames = frames_in(c.pending_output());
    let shape: Vec<(OpCode, bool)> = frames.iter().map(|(o, f, _)| (*o, *f)).collect();
    assert_eq!(
        shape,
        vec![
            (OpCode::Text, false),
            (OpCode::Ping, true),
            (OpCode::Continuation, true)
        ]
    );
    let bytes = c.pending_output().to_vec();
    let mut s = server();
    assert_eq!(
        feed(&mut s, &bytes),
        vec![Ev::Ping(b"between".to_vec()), Ev::Text("κόσμε".into())]
    );
}

#[test]
fn streamed_text_ending_inside_a_code_point_is_refused() {
    let mut c = client();
    c.begin_message(MessageKind::Text, false).unwrap();
    assert_eq!(c.send_fragment(&[0xCE], true), Err(SendError::InvalidUtf8));
    // The refused fragment was not queued; the message is still open.
    assert!(c.pending_output().is_empty());
    c.send_fragment(&[0xCE], false).unwrap();
    c.send_fragment(&[0xBA], true).unwrap();
    let bytes = c.pending_output().to_vec();
    assert_eq!(feed(&mut server(), &bytes), vec![Ev::Text("κ".into())]);
}

#[test]
fn output_is_drained_in_pieces() {
    let mut s = server();
    s.send_binary(&[1; 200]).unwrap();
    s.send_binary(&[2; 10]).unwrap();
    let total = s.buffered_amount();
    assert_eq!(total, 4 + 200 + 2 + 10);
    let all = s.pending_output().to_vec();
    s.consume(100);
    assert_eq!(s.pending_output(), &all[100..]);
    s.consume(total - 100);
    assert_eq!(s.buffered_amount(), 0);
    assert!(s.pending_output().is_empty());
}

#[test]
fn buffered_message_can_be_taken_without_copying() {
    let mut bytes = masked(2, false, 0, b"ab");
    bytes.extend(masked(0, true, 0, b"cd"));
    let mut s = server();
    let r = s.receive(&mut bytes);
    let ptr = match r.event {
        Some(Event::Message { data, buffered, .. }) => {
            assert!(buffered);
            data.as_ptr()
        }
        other => panic!("{other:?}"),
    };
    let taken = s.take_message_buffer();
    assert_eq!(taken, b"abcd");
    assert_eq!(taken.as_ptr(), ptr);
    s.recycle_buffer(taken);
    let mut again = masked(2, false, 0, b"ef");
    again.extend(masked(0, true, 0, b"gh"));
    assert_eq!(feed(&mut s, &again), vec![Ev::Binary(b"efgh".to_vec())]);
}

#[test]
fn shrink_releases_idle_buffers() {
    let mut s = server();
    let mut bytes = masked(2, false, 0, &[0; 1000]);
    bytes.extend(masked(0, true, 0, b""));
    feed(&mut s, &bytes);
    s.send_binary(&[0; 1000]).unwrap();
    let n = s.buffered_amount();
    s.consume(n);
    s.shrink();
    assert_eq!(s.message_buf.capacity(), 0);
    assert_eq!(s.out.capacity(), 0);
}

// --- Property tests ---

fn arb_stream() -> impl Strategy<Value = Vec<u8>> {
    // Valid-looking client frames mixed with raw noise.
    let piece = prop_oneof![
        (
            0u8..16,
            any::<bool>(),
            0u8..8,
            proptest::collection::vec(any::<u8>(), 0..200)
        )
            .prop_map(|(op, fin, rsv, payload)| masked(op, fin, rsv, &payload)),
        (any::<bool>(), "\\PC{0,30}").prop_map(|(fin, s)| masked(1, fin, 0, s.as_bytes())),
        proptest::collection::vec(any::<u8>(), 0..20),
    ];
    proptest::collection::vec(piece, 0..8).prop_map(|pieces| pieces.concat())
}

proptest! {
    #[test]
    fn any_chunking_gives_the_same_events_as_the_whole_input(
        bytes in arb_stream(),
        size in 1usize..40,
    ) {
        let mut whole = server();
        let expected = feed(&mut whole, &bytes);
        let mut chunked = server();
        prop_assert_eq!(feed_chunked(&mut chunked, &bytes, size), expected.clone());
        let mut bytewise = server();
        prop_assert_eq!(feed_chunked(&mut bytewise, &bytes, 1), expected);
        prop_assert_eq!(whole.pending_output(), bytewise.pending_output());
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        for role in [Role::Client, Role::Server] {
            let mut conn = Connection::new(role, Config::default());
            let _ = feed(&mut conn, &bytes);
        }
    }

    #[test]
    fn sent_messages_arrive_intact(
        messages in proptest::collection::vec((any::<bool>(), "\\PC{0,50}"), 0..10),
        size in 1usize..64,
    ) {
        let mut c = client();
        let mut expected = Vec::new();
        for (binary, text) in &messages {
            if *binary {
                c.send_binary(text.as_bytes()).unwrap();
                expected.push(Ev::Binary(text.as_bytes().to_vec()));
            } else {
                c.send_text(text).unwrap();
                expected.push(Ev::Text(text.clone()));
            }
        }
        let bytes = c.pending_output().to_vec();
        let mut s = server();
        prop_assert_eq!(feed_chunked(&mut s, &bytes, size), expected);
    }
}

// --- permessage-deflate (RFC 7692) ---

mod deflate {
    use super::*;
    use crate::deflate::{DeflateConfig, DeflateParams};

    fn with_deflate(role: Role, params: DeflateParams) -> Connection {
        let mut conn = Connection::new(role, Config::default());
        conn.set_deflate(params, &DeflateConfig::default());
        conn
    }

    fn params() -> DeflateParams {
        DeflateParams::default()
    }

    #[test]
    fn rfc7692_compressed_hello_in_one_frame_decodes() {
        // RFC 7692 section 7.2.3.1.
        let bytes = [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        for size in [usize::MAX, 1, 2, 4] {
            let mut c = with_deflate(Role::Client, params());
            assert_eq!(
                feed_chunked(&mut c, &bytes, size),
                vec![Ev::Text("Hello".into())]
            );
        }
    }

    #[test]
    fn rfc7692_compressed_hello_in_two_fragments_decodes() {
        let bytes = [
            0x41, 0x03, 0xf2, 0x48, 0xcd, 0x80, 0x04, 0xc9, 0xc9, 0x07, 0x00,
        ];
        let mut c = with_deflate(Role::Client, params());
        assert_eq!(feed(&mut c, &bytes), vec![Ev::Text("Hello".into())]);
    }

    #[test]
    fn rfc7692_second_hello_uses_the_shared_context() {
        // RFC 7692 section 7.2.3.2: with context takeover the second "Hello" is 5 bytes.
        let mut bytes = vec![0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        bytes.extend_from_slice(&[0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00]);
        let mut c = with_deflate(Role::Client, params());
        assert_eq!(
            feed(&mut c, &bytes),
            vec![Ev::Text("Hello".into()), Ev::Text("Hello".into())]
        );
    }

    #[test]
    fn rfc7692_uncompressed_block_decodes() {
        // RFC 7692 section 7.2.3.3: a stored DEFLATE block.
        let bytes = [
            0xc1, 0x0b, 0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ];
        let mut c = with_deflate(Role::Client, params());
        assert_eq!(feed(&mut c, &bytes), vec![Ev::Text("Hello".into())]);
    }

    #[test]
    fn uncompressed_message_on_a_deflate_connection_is_fine() {
        let mut c = with_deflate(Role::Client, params());
        assert_eq!(
            feed(&mut c, &plain(1, true, 0, b"plain")),
            vec![Ev::Text("plain".into())]
        );
    }

    #[test]
    fn rsv1_on_a_continuation_frame_fails_with_1002() {
        let mut bytes = plain(2, false, 4, &[0xf2, 0x48]);
        bytes.extend(plain(0, true, 4, &[0xcd]));
        let mut c = with_deflate(Role::Client, params());
        assert_eq!(
            feed(&mut c, &bytes),
            vec![Ev::Failed(ProtocolError::CompressedControlOrContinuation)]
        );
        assert_eq!(queued_close(&c), Some(1002));
    }

    #[test]
    fn rsv1_on_a_control_frame_fails_with_1002() {
        let mut c = with_deflate(Role::Client, params());
        assert_eq!(
            feed(&mut c, &plain(9, true, 4, b"")),
            vec![Ev::Failed(ProtocolError::CompressedControlOrContinuation)]
        );
    }

    #[test]
    fn rsv2_and_rsv3_still_fail_with_deflate() {
        for rsv in [1u8, 2, 3] {
            let mut c = with_deflate(Role::Client, params());
            assert_eq!(
                feed(&mut c, &plain(1, true, rsv, b"x")),
                vec![Ev::Failed(ProtocolError::ReservedBits)]
            );
        }
    }

    #[test]
    fn corrupt_compressed_data_fails_with_1007() {
        let mut c = with_deflate(Role::Client, params());
        assert_eq!(
            feed(&mut c, &plain(2, true, 4, &[0xff, 0xff, 0xff, 0xff])),
            vec![Ev::Failed(ProtocolError::InvalidCompressedData)]
        );
        assert_eq!(queued_close(&c), Some(1007));
    }

    #[test]
    fn decompression_bomb_fails_with_1009_at_the_limit() {
        // 64 MiB of zeros compress to ~64 KiB; the limit is 1 MiB of inflated output.
        let mut sender = with_deflate(Role::Server, params());
        sender.send_binary(&vec![0u8; 64 << 20]).unwrap();
        let bytes = sender.pending_output().to_vec();
        assert!(bytes.len() < 1 << 20, "the bomb is small on the wire");
        let config = Config {
            max_message_size: 1 << 20,
            ..Config::default()
        };
        let mut c = Connection::new(Role::Client, config);
        c.set_deflate(params(), &DeflateConfig::default());
        assert_eq!(
            feed(&mut c, &bytes),
            vec![Ev::Failed(ProtocolError::MessageTooBig)]
        );
        assert!(c.message_buf.capacity() <= 1 << 20);
        assert_eq!(queued_close(&c), Some(1009));
    }

    #[test]
    fn invalid_utf8_inside_compressed_text_fails_with_1007() {
        let mut sender = with_deflate(Role::Server, params());
        // Compressed as binary, then relabelled as text by flipping the opcode.
        sender
            .send_binary(
                &[b'a'; 64]
                    .iter()
                    .copied()
                    .chain([0xC0, 0xAF])
                    .collect::<Vec<_>>(),
            )
            .unwrap();
        let mut bytes = sender.pending_output().to_vec();
        bytes[0] = (bytes[0] & 0xF0) | 0x1;
        let mut c = with_deflate(Role::Client, params());
        assert_eq!(
            feed(&mut c, &bytes),
            vec![Ev::Failed(ProtocolError::InvalidUtf8)]
        );
    }

    #[test]
    fn round_trip_for_every_parameter_combination_both_directions() {
        for bits in 0..16u8 {
            for window in [8u8, 9, 12, 15] {
                let p = DeflateParams {
                    server_no_context_takeover: bits & 1 != 0,
                    client_no_context_takeover: bits & 2 != 0,
                    server_max_window_bits: if bits & 4 != 0 { window } else { 15 },
                    client_max_window_bits: if bits & 8 != 0 { window } else { 15 },
                };
                let mut c = with_deflate(Role::Client, p);
                let mut s = with_deflate(Role::Server, p);
                let text = "tidewire ".repeat(200);
                for _ in 0..3 {
                    c.send_text(&text).unwrap();
                    s.send_binary(text.as_bytes()).unwrap();
                }
                let to_server = c.pending_output().to_vec();
                let to_client = s.pending_output().to_vec();
                assert!(to_server.len() < text.len(), "compressed: {p:?}");
                assert_eq!(
                    feed_chunked(&mut s, &to_server, 7),
                    vec![Ev::Text(text.clone()); 3],
                    "{p:?}"
                );
                assert_eq!(
                    feed_chunked(&mut c, &to_client, 5),
                    vec![Ev::Binary(text.clone().into_bytes()); 3],
                    "{p:?}"
                );
            }
        }
    }

    #[test]
    fn compressed_frames_carry_rsv1_on_the_first_frame_only() {
        let mut c = with_deflate(Role::Client, params());
        c.begin_message(MessageKind::Text, true).unwrap();
        c.send_fragment("a".repeat(100).as_bytes(), false).unwrap();
        c.send_fragment("b".repeat(100).as_bytes(), false).unwrap();
        c.send_fragment(b"", true).unwrap();
        let out = c.pending_output().to_vec();
        let mut rest = &out[..];
        let mut rsv1 = Vec::new();
        while !rest.is_empty() {
            let (h, n) = FrameHeader::decode(rest).unwrap().unwrap();
            rsv1.push(h.rsv1);
            rest = &rest[n + h.payload_len as usize..];
        }
        assert_eq!(rsv1, vec![true, false, false]);
        let mut s = with_deflate(Role::Server, params());
        assert_eq!(
            feed(&mut s, &out),
            vec![Ev::Text("a".repeat(100) + &"b".repeat(100))]
        );
    }

    #[test]
    fn one_message_can_be_sent_uncompressed_and_short_ones_are() {
        let mut s = with_deflate(Role::Server, params());
        s.send_message(MessageKind::Text, "x".repeat(500).as_bytes(), false)
            .unwrap();
        assert_eq!(s.pending_output()[0] & 0x40, 0, "RSV1 clear when asked");
        let n = s.buffered_amount();
        s.consume(n);
        s.send_text("hi").unwrap();
        assert_eq!(s.pending_output()[0] & 0x40, 0, "below the threshold");
        let n = s.buffered_amount();
        s.consume(n);
        s.send_text(&"x".repeat(500)).unwrap();
        assert_eq!(s.pending_output()[0] & 0x40, 0x40, "compressed");
    }

    #[test]
    fn connections_without_the_extension_allocate_no_codec() {
        let conn = server();
        assert!(!conn.deflate_enabled());
        assert!(with_deflate(Role::Server, params()).deflate_enabled());
    }

    proptest! {
        #[test]
        fn compressed_messages_arrive_intact_in_any_chunking(
            messages in proptest::collection::vec("\\PC{0,300}", 1..6),
            size in 1usize..50,
        ) {
            let mut c = with_deflate(Role::Client, params());
            for m in &messages {
                c.send_text(m).unwrap();
            }
            let bytes = c.pending_output().to_vec();
            let mut s = with_deflate(Role::Server, params());
            let expected: Vec<Ev> = messages.iter().map(|m| Ev::Text(m.clone())).collect();
            prop_assert_eq!(feed_chunked(&mut s, &bytes, size), expected);
        }
    }
}

mod deflate_memory {
    use super::*;
    use crate::deflate::{DeflateConfig, DeflateParams};

    fn codecs(conn: &Connection) -> (bool, bool) {
        let d = conn.deflate.as_ref().expect("deflate on");
        (d.compressor.is_some(), d.decompressor.is_some())
    }

    #[test]
    fn codec_state_is_created_on_first_use_only() {
        let mut s = Connection::new(Role::Server, Config::default());
        s.set_deflate(DeflateParams::default(), &DeflateConfig::default());
        assert_eq!(codecs(&s), (false, false));
        s.send_text(&"x".repeat(100)).unwrap();
        assert_eq!(codecs(&s), (true, false));
        let rfc_hello = [
            0xc1, 0x87, 0, 0, 0, 0, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00,
        ];
        assert_eq!(feed(&mut s, &rfc_hello), vec![Ev::Text("Hello".into())]);
        assert_eq!(codecs(&s), (true, true));
    }

    #[test]
    fn shrink_drops_only_codecs_without_context_takeover() {
        let both_reset = DeflateParams {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            ..DeflateParams::default()
        };
        for (params, kept) in [
            (DeflateParams::default(), (true, true)),
            (both_reset, (false, false)),
        ] {
            let mut c = Connection::new(Role::Client, Config::default());
            c.set_deflate(params, &DeflateConfig::default());
            let mut s = Connection::new(Role::Server, Config::default());
            s.set_deflate(params, &DeflateConfig::default());
            for _ in 0..2 {
                s.send_text(&"hello tidewire ".repeat(20)).unwrap();
                let bytes = s.pending_output().to_vec();
                s.consume(bytes.len());
                assert_eq!(feed(&mut c, &bytes).len(), 1);
                s.shrink();
                c.shrink();
                assert_eq!(codecs(&s).0, kept.0, "{params:?}");
                assert_eq!(codecs(&c).1, kept.1, "{params:?}");
            }
        }
    }
}

mod deferred_close_replies {
    use super::*;

    fn deferred() -> Connection {
        Connection::new(
            Role::Server,
            Config {
                defer_close_replies: true,
                ..Config::default()
            },
        )
    }

    fn opcodes(conn: &Connection) -> Vec<OpCode> {
        frames_in(conn.pending_output())
            .into_iter()
            .map(|(op, _, _)| op)
            .collect()
    }

    #[test]
    fn messages_before_a_bad_frame_can_be_answered_before_the_failure_close() {
        let mut bytes = masked(1, true, 0, b"first");
        bytes.extend(masked(5, true, 0, b""));
        let mut conn = deferred();
        let events = feed(&mut conn, &bytes);
        assert_eq!(
            events,
            vec![
                Ev::Text("first".into()),
                Ev::Failed(ProtocolError::ReservedOpcode(5))
            ]
        );
        assert!(conn.close_reply_owed());
        assert!(!conn.wants_transport_close(), "the close is not out yet");
        assert!(conn.pending_output().is_empty());
        conn.send_text("first").unwrap();
        conn.queue_close_reply();
        assert_eq!(opcodes(&conn), vec![OpCode::Text, OpCode::Close]);
        assert_eq!(queued_close(&conn), Some(1002));
        assert!(conn.wants_transport_close());
        assert_eq!(conn.send_text("late"), Err(SendError::Closed));
    }

    #[test]
    fn messages_before_the_peer_close_can_be_answered_before_the_reply() {
        let mut bytes = masked(2, true, 0, b"data");
        bytes.extend(masked(8, true, 0, &1000u16.to_be_bytes()));
        let mut conn = deferred();
        assert_eq!(
            feed(&mut conn, &bytes),
            vec![Ev::Binary(b"data".to_vec()), Ev::Close(1000, String::new())]
        );
        conn.send_binary(b"data").unwrap();
        assert_eq!(conn.state(), State::Closing);
        conn.queue_close_reply();
        assert_eq!(opcodes(&conn), vec![OpCode::Binary, OpCode::Close]);
        assert_eq!(conn.state(), State::Closed);
        assert!(conn.wants_transport_close());
    }

    #[test]
    fn the_application_may_close_with_its_own_code_instead_of_the_reply() {
        let mut conn = deferred();
        feed(&mut conn, &masked(8, true, 0, &1001u16.to_be_bytes()));
        conn.close(4000, "app").unwrap();
        conn.queue_close_reply(); // nothing left to queue
        assert_eq!(opcodes(&conn), vec![OpCode::Close]);
        assert_eq!(queued_close(&conn), Some(4000));
    }

    #[test]
    fn without_deferral_the_close_is_queued_inside_receive() {
        let mut conn = server();
        feed(&mut conn, &masked(8, true, 0, &1000u16.to_be_bytes()));
        assert!(!conn.close_reply_owed());
        assert_eq!(opcodes(&conn), vec![OpCode::Close]);
    }
}

/// `send_message_or_head`: the one place that decides whether a whole message may be written
/// straight from the caller's buffer (header here, payload as is) or must be queued.
mod direct_send {
    use super::*;
    use crate::deflate::{DeflateConfig, DeflateParams};

    fn send(conn: &mut Connection, kind: MessageKind, data: &[u8]) -> Result<Sent, SendError> {
        conn.send_message_or_head(kind, data, true, true)
    }

    fn direct_head(sent: Result<Sent, SendError>) -> Vec<u8> {
        match sent {
            Ok(Sent::Direct(head)) => head.as_bytes().to_vec(),
            other => panic!("expected a direct write, got {other:?}"),
        }
    }

    #[test]
    fn server_message_goes_direct_with_the_minimal_header_at_every_length_encoding() {
        let cases: [(usize, &[u8]); 5] = [
            (0, &[0x82, 0]),
            (125, &[0x82, 125]),
            (126, &[0x82, 126, 0, 126]),
            (65535, &[0x82, 126, 0xFF, 0xFF]),
            (65536, &[0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]),
        ];
        for (len, expected) in cases {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut s = server();
            let head = direct_head(send(&mut s, MessageKind::Binary, &payload));
            assert_eq!(head, expected, "len {len}");
            assert!(s.pending_output().is_empty(), "len {len}: nothing queued");
            // The header and the payload as given are what a client receives.
            let mut wire = head;
            wire.extend_from_slice(&payload);
            assert_eq!(feed(&mut client(), &wire), vec![Ev::Binary(payload)]);
        }
    }

    #[test]
    fn server_text_goes_direct_with_the_text_opcode() {
        let text = "κόσμε".repeat(30);
        let head = direct_head(send(&mut server(), MessageKind::Text, text.as_bytes()));
        let [hi, lo] = (text.len() as u16).to_be_bytes();
        assert_eq!(head, [0x81, 126, hi, lo]);
    }

    #[test]
    fn without_the_transports_consent_the_message_is_queued() {
        let mut s = server();
        let sent = s.send_message_or_head(MessageKind::Binary, &[7; 300], true, false);
        assert_eq!(sent, Ok(Sent::Queued));
        assert_eq!(s.pending_output(), &plain(2, true, 0, &[7; 300])[..]);
    }

    #[test]
    fn client_messages_are_queued_masked() {
        let mut c = client();
        assert_eq!(
            send(&mut c, MessageKind::Binary, &[7; 300]),
            Ok(Sent::Queued)
        );
        let (h, _) = FrameHeader::decode(c.pending_output()).unwrap().unwrap();
        assert!(h.mask.is_some());
        assert_eq!(
            frames_in(c.pending_output()),
            vec![(OpCode::Binary, true, vec![7; 300])]
        );
    }

    #[test]
    fn with_permessage_deflate_messages_are_queued() {
        for compress in [true, false] {
            let mut s = server();
            s.set_deflate(DeflateParams::default(), &DeflateConfig::default());
            let sent = s.send_message_or_head(MessageKind::Text, &[b'a'; 4096], compress, true);
            assert_eq!(sent, Ok(Sent::Queued), "compress {compress}");
            let (h, _) = FrameHeader::decode(s.pending_output()).unwrap().unwrap();
            assert_eq!(h.rsv1, compress);
        }
    }

    #[test]
    fn a_whole_message_is_refused_while_a_streamed_one_is_open() {
        let mut s = server();
        s.begin_message(MessageKind::Binary, false).unwrap();
        assert_eq!(
            send(&mut s, MessageKind::Binary, &[1; 300]),
            Err(SendError::MessageInProgress)
        );
        assert!(s.pending_output().is_empty());
        s.send_fragment(b"end", true).unwrap();
        s.consume(s.buffered_amount());
        direct_head(send(&mut s, MessageKind::Binary, &[1; 300]));
    }

    /// A direct write would overtake what waits in the output (an earlier message, a pong).
    #[test]
    fn with_output_waiting_the_message_is_queued_behind_it() {
        let mut s = server();
        feed(&mut s, &masked(9, true, 0, b"ping"));
        assert_eq!(
            send(&mut s, MessageKind::Binary, &[1; 300]),
            Ok(Sent::Queued)
        );
        let shape: Vec<OpCode> = frames_in(s.pending_output())
            .into_iter()
            .map(|(op, _, _)| op)
            .collect();
        assert_eq!(shape, vec![OpCode::Pong, OpCode::Binary]);
        s.consume(s.buffered_amount() - 1);
        assert_eq!(
            send(&mut s, MessageKind::Binary, &[2; 300]),
            Ok(Sent::Queued)
        );
        s.consume(s.buffered_amount());
        direct_head(send(&mut s, MessageKind::Binary, &[3; 300]));
    }

    #[test]
    fn text_that_is_not_utf8_is_refused_either_way() {
        for transport_direct in [true, false] {
            for role in [Role::Server, Role::Client] {
                let mut conn = Connection::new(role, Config::default());
                let sent = conn.send_message_or_head(
                    MessageKind::Text,
                    &[0xC0; 300],
                    true,
                    transport_direct,
                );
                assert_eq!(sent, Err(SendError::InvalidUtf8), "{role:?}");
                assert!(conn.pending_output().is_empty());
            }
        }
    }

    #[test]
    fn nothing_is_sent_after_our_close() {
        let mut s = server();
        s.close(1000, "").unwrap();
        s.consume(s.buffered_amount());
        assert_eq!(
            send(&mut s, MessageKind::Binary, &[1; 300]),
            Err(SendError::Closed)
        );
        assert!(s.pending_output().is_empty());
    }

    #[test]
    fn nothing_is_sent_after_the_peer_close_is_answered() {
        let mut s = server();
        feed(&mut s, &masked(8, true, 0, &1000u16.to_be_bytes()));
        s.consume(s.buffered_amount());
        assert_eq!(
            send(&mut s, MessageKind::Binary, &[1; 300]),
            Err(SendError::Closed)
        );
    }

    /// While a close reply is held back the application may still answer, but the message
    /// is queued: it goes out ahead of the close through the one ordered output.
    #[test]
    fn while_a_close_reply_is_owed_messages_are_queued() {
        let mut s = Connection::new(
            Role::Server,
            Config {
                defer_close_replies: true,
                ..Config::default()
            },
        );
        feed(&mut s, &masked(8, true, 0, &1000u16.to_be_bytes()));
        assert!(s.close_reply_owed());
        assert_eq!(
            send(&mut s, MessageKind::Binary, &[1; 300]),
            Ok(Sent::Queued)
        );
        s.queue_close_reply();
        let shape: Vec<OpCode> = frames_in(s.pending_output())
            .into_iter()
            .map(|(op, _, _)| op)
            .collect();
        assert_eq!(shape, vec![OpCode::Binary, OpCode::Close]);
    }

    #[test]
    fn a_failed_connection_sends_nothing_directly() {
        let mut s = server();
        feed(&mut s, &plain(2, true, 0, b"unmasked"));
        s.consume(s.buffered_amount());
        assert_eq!(s.state(), State::Closed);
        assert_eq!(
            send(&mut s, MessageKind::Binary, &[1; 300]),
            Err(SendError::Closed)
        );
    }
}

mod prepared_messages {
    use super::*;
    use crate::deflate::shared_compressors;
    use crate::prepared::Prepared;

    const NO_TAKEOVER: DeflateParams = DeflateParams {
        server_no_context_takeover: true,
        client_no_context_takeover: false,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    };

    fn deflate_pair(params: DeflateParams) -> (Connection, Connection) {
        let mut s = server();
        s.set_deflate(params, &DeflateConfig::default());
        let mut c = client();
        c.set_deflate(params, &DeflateConfig::default());
        (s, c)
    }

    /// Takes what `conn` queued, as the transport would.
    fn drain(conn: &mut Connection) -> Vec<u8> {
        let bytes = conn.pending_output().to_vec();
        conn.consume(bytes.len());
        bytes
    }

    /// The bytes one send of `msg` puts on the wire, direct or queued.
    fn wire(conn: &mut Connection, msg: &mut Prepared<'_>, direct: bool) -> (bool, Vec<u8>) {
        match conn.send_prepared(msg, direct).unwrap() {
            SentFrame::Shared(frame) => {
                // The transport sends what was queued first, then the frame.
                let mut bytes = drain(conn);
                bytes.extend_from_slice(frame);
                (true, bytes)
            }
            SentFrame::Queued => (false, drain(conn)),
        }
    }

    #[test]
    fn one_uncompressed_frame_is_shared_and_equals_an_ordinary_send() {
        let mut msg = Prepared::new(MessageKind::Text, b"hello, everyone").unwrap();
        let mut ordinary = server();
        ordinary.send_text("hello, everyone").unwrap();
        let expected = drain(&mut ordinary);
        for direct in [true, false] {
            let mut s = server();
            assert_eq!(wire(&mut s, &mut msg, direct), (direct, expected.clone()));
        }
        assert_eq!(msg.compressions(), 0);
        assert_eq!(
            msg.framed_bytes(),
            expected.len(),
            "one frame for every connection"
        );
    }

    #[test]
    fn a_shared_frame_follows_output_already_there() {
        for shares in [true, false] {
            let mut s = server();
            s.send_ping(b"first").unwrap();
            let mut msg = Prepared::new(MessageKind::Binary, &[7; 300]).unwrap();
            let (shared, bytes) = wire(&mut s, &mut msg, shares);
            assert_eq!(shared, shares);
            let frames = frames_in(&bytes);
            assert_eq!(frames.len(), 2);
            assert_eq!(frames[0], (OpCode::Ping, true, b"first".to_vec()));
            assert_eq!(frames[1], (OpCode::Binary, true, vec![7; 300]));
        }
    }

    #[test]
    fn a_pong_before_a_shared_frame_is_not_rewritten() {
        // Past the pong backlog a newer ping replaces the last unsent pong; once a shared
        // frame follows that pong, the pong must stay where it is.
        let mut s = server();
        s.send_binary(&vec![1; PONG_BACKLOG]).unwrap();
        assert_eq!(
            feed(&mut s, &masked(0x9, true, 0, b"one")),
            vec![Ev::Ping(b"one".to_vec())]
        );
        let mut msg = Prepared::new(MessageKind::Binary, b"shared").unwrap();
        let SentFrame::Shared(frame) = s.send_prepared(&mut msg, true).unwrap() else {
            panic!("shared")
        };
        let frame = frame.clone();
        assert_eq!(
            feed(&mut s, &masked(0x9, true, 0, b"two")),
            vec![Ev::Ping(b"two".to_vec())]
        );
        let out = drain(&mut s);
        let pongs: Vec<_> = frames_in(&out)
            .into_iter()
            .filter(|f| f.0 == OpCode::Pong)
            .map(|f| f.2)
            .collect();
        assert_eq!(pongs, vec![b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(frames_in(&frame)[0].2, b"shared".to_vec());
    }

    #[test]
    fn a_frame_is_copied_behind_output_already_there_without_sharing() {
        let mut s = server();
        s.send_ping(b"first").unwrap();
        let mut msg = Prepared::new(MessageKind::Binary, &[7; 300]).unwrap();
        let (direct, bytes) = wire(&mut s, &mut msg, false);
        assert!(!direct);
        let frames = frames_in(&bytes);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0], (OpCode::Ping, true, b"first".to_vec()));
        assert_eq!(frames[1], (OpCode::Binary, true, vec![7; 300]));
    }

    #[test]
    fn compression_without_context_takeover_runs_once_for_all_connections() {
        let text = "the same compressible update for every subscriber ".repeat(40);
        let mut msg = Prepared::new(MessageKind::Text, text.as_bytes()).unwrap();
        let mut frames = Vec::new();
        for _ in 0..50 {
            let (mut s, mut c) = deflate_pair(NO_TAKEOVER);
            let (_, bytes) = wire(&mut s, &mut msg, true);
            assert!(
                bytes.len() < text.len() / 4,
                "compressed: {} bytes",
                bytes.len()
            );
            assert_eq!(bytes[0] & 0x40, 0x40, "RSV1 set");
            assert_eq!(feed(&mut c, &bytes), vec![Ev::Text(text.clone())]);
            frames.push(bytes);
        }
        assert_eq!(msg.compressions(), 1);
        assert!(frames.windows(2).all(|w| w[0] == w[1]));
        assert!(shared_compressors() >= 1);
    }

    #[test]
    fn each_parameter_set_is_compressed_once() {
        let text = "abcabcabc ".repeat(100);
        let mut msg = Prepared::new(MessageKind::Text, text.as_bytes()).unwrap();
        for bits in [15, 10, 15, 10, 9] {
            let params = DeflateParams {
                server_max_window_bits: bits,
                ..NO_TAKEOVER
            };
            let (mut s, mut c) = deflate_pair(params);
            let (_, bytes) = wire(&mut s, &mut msg, false);
            assert_eq!(feed(&mut c, &bytes), vec![Ev::Text(text.clone())]);
        }
        assert_eq!(msg.compressions(), 3);
    }

    #[test]
    fn context_takeover_and_clients_send_their_own_frames() {
        let text = "history matters ".repeat(30);
        let mut msg = Prepared::new(MessageKind::Text, text.as_bytes()).unwrap();
        let (mut s, mut c) = deflate_pair(DeflateParams::default());
        for _ in 0..3 {
            let (direct, bytes) = wire(&mut s, &mut msg, true);
            assert!(!direct);
            assert_eq!(feed(&mut c, &bytes), vec![Ev::Text(text.clone())]);
        }
        let mut from_client = client();
        let (direct, bytes) = wire(&mut from_client, &mut msg, true);
        assert!(!direct, "a client masks with its own key");
        let mut peer = server();
        assert_eq!(feed(&mut peer, &bytes), vec![Ev::Text(text.clone())]);
        assert_eq!(msg.compressions(), 0);
        assert_eq!(msg.framed_bytes(), 0);
    }

    #[test]
    fn short_messages_stay_uncompressed_under_the_threshold() {
        let (mut s, mut c) = deflate_pair(NO_TAKEOVER);
        let mut msg = Prepared::new(MessageKind::Binary, b"tiny").unwrap();
        let (_, bytes) = wire(&mut s, &mut msg, true);
        assert_eq!(bytes[0] & 0x40, 0, "RSV1 clear");
        assert_eq!(feed(&mut c, &bytes), vec![Ev::Binary(b"tiny".to_vec())]);
        assert_eq!(msg.compressions(), 0);
    }

    #[test]
    fn what_a_message_may_not_do_is_refused() {
        assert_eq!(
            Prepared::new(MessageKind::Text, &[0xff]).unwrap_err(),
            SendError::InvalidUtf8
        );
        let mut msg = Prepared::new(MessageKind::Binary, b"x").unwrap();
        let mut s = server();
        s.begin_message(MessageKind::Text, false).unwrap();
        assert_eq!(
            s.send_prepared(&mut msg, true).unwrap_err(),
            SendError::MessageInProgress
        );
        let mut s = server();
        s.close(1000, "").unwrap();
        assert_eq!(
            s.send_prepared(&mut msg, true).unwrap_err(),
            SendError::Closed
        );
    }

    #[test]
    fn whole_messages_without_takeover_use_the_shared_compressor() {
        let (mut s, mut c) = deflate_pair(NO_TAKEOVER);
        let text = "shared shared shared ".repeat(20);
        for _ in 0..3 {
            s.send_text(&text).unwrap();
            let bytes = drain(&mut s);
            assert_eq!(feed(&mut c, &bytes), vec![Ev::Text(text.clone())]);
        }
        assert!(
            s.deflate.as_ref().unwrap().compressor.is_none(),
            "no own compressor"
        );
        // A fragmented message needs a compressor of its own for its whole length.
        s.begin_message(MessageKind::Text, true).unwrap();
        s.send_fragment(text.as_bytes(), false).unwrap();
        s.send_fragment(text.as_bytes(), true).unwrap();
        let bytes = drain(&mut s);
        assert_eq!(feed(&mut c, &bytes), vec![Ev::Text(text.repeat(2))]);
        assert!(s.deflate.as_ref().unwrap().compressor.is_some());
    }
}
