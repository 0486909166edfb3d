//! A vpcd card that does nothing, for benchmarks' baselines.

use std::io::{Read, Write};
use std::sync::mpsc;

use super::{HarnessError, io_error};
use vscard_vpcd::VpcdRequest;
use vscard_vpcd::codec::{FrameDecoder, encode_frame};

/// A vpcd card that does nothing: the ATR for GET ATR, and for every APDU
/// `9000` or, after [`TrivialCard::answer_with`], the given answers in
/// turn (so that a benchmark's baseline moves as many bytes as the card
/// it is compared with), with the bridge's socket options (`TCP_NODELAY`,
/// `TCP_QUICKACK` re-armed after every read). Benchmarks measure the
/// bridge against it on the same pcscd in the same run. It runs on its
/// own thread until dropped; it connects once (client mode) and does not
/// reconnect.
#[derive(Debug)]
pub struct TrivialCard {
    stream: std::net::TcpStream,
    answers: mpsc::Sender<Vec<Vec<u8>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The trivial card's ATR (T=1, no historical bytes).
pub const TRIVIAL_ATR: [u8; 4] = [0x3B, 0x80, 0x80, 0x01];

impl TrivialCard {
    /// Connects to vpcd on 127.0.0.1:`port` (35963 + slot).
    pub fn connect(port: u16) -> Result<TrivialCard, HarnessError> {
        let stream = std::net::TcpStream::connect(("127.0.0.1", port))
            .map_err(io_error(format!("cannot connect to vpcd on port {port}")))?;
        stream
            .set_nodelay(true)
            .map_err(io_error("cannot set TCP_NODELAY"))?;
        let reader = stream
            .try_clone()
            .map_err(io_error("cannot clone the socket"))?;
        let (answers, new_answers) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("trivial-card-{port}"))
            .spawn(move || trivial_card_loop(reader, new_answers))
            .map_err(io_error("cannot start the trivial card"))?;
        Ok(TrivialCard {
            stream,
            answers,
            thread: Some(thread),
        })
    }

    /// From the next APDU on, answers with `responses` (each data and
    /// status word), in turn and round again; an empty list is `9000`.
    pub fn answer_with(&self, responses: &[Vec<u8>]) {
        let frames = responses
            .iter()
            .filter_map(|response| encode_frame(response).ok())
            .collect();
        let _ = self.answers.send(frames);
    }
}

impl Drop for TrivialCard {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn trivial_card_loop(mut stream: std::net::TcpStream, new_answers: mpsc::Receiver<Vec<Vec<u8>>>) {
    let mut decoder = FrameDecoder::new();
    let mut chunk = vec![0u8; 16 * 1024];
    let atr = encode_frame(&TRIVIAL_ATR).unwrap_or_default();
    let ok = encode_frame(&[0x90, 0x00]).unwrap_or_default();
    let mut answers: Vec<Vec<u8>> = Vec::new();
    let mut next = 0;
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let _ = socket2::SockRef::from(&stream).set_tcp_quickack(true);
        decoder.extend(chunk.get(..n).unwrap_or_default());
        while let Some(request) = decoder.next_request() {
            // One atomic check of the channel per APDU, as the bridge
            // counts one per APDU.
            if let Ok(list) = new_answers.try_recv() {
                answers = list;
                next = 0;
            }
            let reply = match request {
                Ok(VpcdRequest::GetAtr) => &atr,
                Ok(VpcdRequest::Apdu(_)) => match answers.get(next) {
                    Some(answer) => {
                        next = (next + 1) % answers.len();
                        answer
                    }
                    None => &ok,
                },
                _ => continue,
            };
            if stream.write_all(reply).is_err() {
                return;
            }
        }
    }
}
