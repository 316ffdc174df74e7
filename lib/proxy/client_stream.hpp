// SPDX-License-Identifier: Apache-2.0
// Internal to proxy: the per-connection stream GatewayServer serves each
// client with (server.cpp), its request head checks and strict chunked
// decoding, and closing a connection after a rejection.
#pragma once

#include "chunked_body.hpp"
#include "wire.hpp"

#include <httplib.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <sys/uio.h>

namespace claudegate::proxy {

// A client connection with one read buffer for all its requests: httplib
// makes a new stream per request and so drops pipelined requests.
// The next request's head is read here first, within a deadline and a size
// cap (httplib's own timeout is per read, so a client trickling a byte at a
// time would hold a worker forever), and checked before httplib parses it.
// A chunked body is decoded strictly as httplib reads it (its own parser
// takes bare LFs and chunk data without CRLF) and handed on re-encoded.
class ClientStream final : public httplib::Stream {
public:
  struct Limits {
    int read_ms = 30'000;  // per read, as httplib's read timeout
    int write_ms = 30'000; // per write
    int head_ms = 30'000;  // the whole request head
    HeadLimits head;
    std::uint64_t body = 32 * 1024 * 1024; // a chunked body's limit (httplib bounds Content-Length only)
  };

  ClientStream(socket_t sock, const Limits& limits) : m_sock(sock), m_limits(limits) {}

  bool is_readable() const override;
  // As httplib's own stream: writable and the client has not hung up (the
  // stream relay relies on this to notice a client gone mid-stream).
  bool is_writable() const override;

  // The request's head, then its body: as sent, or re-encoded when chunked.
  ssize_t read(char* ptr, std::size_t size) override;

  // A response head is held back until its body is written (or the
  // request is done, see begin_response/flush), so a plain response leaves
  // in one send; interim 1xx heads and chunked (streaming) heads go at once.
  ssize_t write(const char* ptr, std::size_t size) override;

  // The next write that is not an interim 1xx head is a response head to hold.
  void begin_response() { m_hold_head = true; }

  // Send a held response head (a response without a body); false when the client is gone.
  bool flush();

  void get_remote_ip_and_port(std::string& ip, int& port) const override;
  void get_local_ip_and_port(std::string& ip, int& port) const override;
  socket_t socket() const override { return m_sock; }

  // Wait up to `timeout_ms` for the next request (a buffered one counts).
  bool wait_request(int timeout_ms) const;

  // Buffer and check the next request head: nothing when it is ready for
  // httplib, else the rejection to send (none when the client just left).
  std::optional<std::optional<Rejection>> next_head();

  // True when httplib gave up on a request (a read failed or timed out, or
  // it answered without reading the whole head or body, as for a refused
  // Expect: 100-continue): whatever follows on this connection is no
  // request, so it must end.
  bool lost_track() const;

  // Why the chunked body of the current request was refused, if it was.
  const std::optional<Rejection>& body_refusal() const { return m_refusal; }

private:
  // False once the client closed its end: readable, yet nothing to peek.
  bool peer_open() const;

  std::string_view pending() const { return std::string_view(m_buffer).substr(m_offset); }

  // Up to `size` buffered bytes, receiving more (within the read timeout) when none are.
  ssize_t read_raw(char* ptr, std::size_t size);

  // Decode the chunked body as far as needed to hand httplib `size` bytes
  // of it re-encoded; -1 (and the refusal kept) when it breaks the rules.
  ssize_t read_chunked(char* ptr, std::size_t size);

  // Receive what is there (waiting until `deadline`) onto the buffer: the
  // byte count, 0 when the client closed, -1 on timeout or error.
  ssize_t fill(std::chrono::steady_clock::time_point deadline);

  ssize_t receive_now(char* data, std::size_t size) const;

  // Send `first` then `second` in as few sends as the socket takes, waiting
  // up to the write timeout whenever it is full; false on error.
  bool send_parts(std::string_view first, std::string_view second) const;

  // Consume `sent` bytes from parts[index…]: the index of the first part with bytes left.
  static std::size_t advance(std::array<iovec, 2>& parts, std::size_t index, std::size_t sent);

  // The size of the buffered head once its blank line is in (a bare-LF one
  // too, for check_request_head to refuse), or why it never will be.
  std::expected<std::size_t, std::optional<Rejection>> read_head();

  std::optional<Rejection> oversized(std::string_view head) const;

  // A 408 when the head deadline passed with part of a head in; nothing
  // when the client sent nothing.
  std::optional<Rejection> timed_out() const;

  socket_t m_sock;
  Limits m_limits;
  std::string m_buffer;
  std::size_t m_offset = 0;
  std::size_t m_head_left = 0;   // bytes of the current head httplib has not read
  std::uint64_t m_body_left = 0; // bytes of its Content-Length body not read
  std::optional<ChunkedBody> m_chunked;
  std::string m_decoded; // the chunked body re-encoded, for httplib to read
  std::size_t m_decoded_offset = 0;
  std::optional<Rejection> m_refusal;
  bool m_broken = false;
  bool m_hold_head = false;
  bool m_peer_closed = false; // a read saw the client's end of stream
  std::string m_held;         // a response head waiting for its body
};

// Marks, while it lives, the connection the calling worker thread serves,
// for the error handler to learn why its body was refused.
class ServingClient {
public:
  explicit ServingClient(const ClientStream& stream);
  ~ServingClient();
  ServingClient(const ServingClient&) = delete;
  ServingClient& operator=(const ServingClient&) = delete;
};

// Why the body of the request the calling thread serves was refused, if it
// was (httplib only knows "400").
std::optional<Rejection> body_refusal_here();

// Close after a rejection: stop sending, then read what the client still
// sends for a moment, so closing with unread bytes does not reset the
// connection before the client has read the answer.
void linger_close(socket_t sock);

} // namespace claudegate::proxy
