// GenieACS extension script for the cwmp-agent STUN server (TR-111 2.2.2).
//
// Put this file in GenieACS's ext directory (GENIEACS_EXT_DIR) and call it
// from a provision or a virtual parameter:
//
//   ext("cwmp-stun", "connectionRequest", "<STUNUsername of the CPE>")
//
// It asks `cwmp-agent stun-server` to send a UDP Connection Request from the
// STUN socket itself, which is what lets it through the CPE's NAT. Set
// CWMP_STUN_API if the server's API is not on http://127.0.0.1:7549, and
// CWMP_STUN_TOKEN_FILE if its bearer token is not in
// /var/lib/cwmp-agent/stun-server/api-token (the server writes it there on
// first start; the file must be readable by GenieACS's user).
"use strict";

const fs = require("fs");
const http = require("http");

const API = process.env.CWMP_STUN_API || "http://127.0.0.1:7549";
const TOKEN_FILE = process.env.CWMP_STUN_TOKEN_FILE || "/var/lib/cwmp-agent/stun-server/api-token";

function token() {
  return fs.readFileSync(TOKEN_FILE, "utf8").trim();
}

function post(path, body, callback) {
  const data = JSON.stringify(body);
  let auth;
  try {
    auth = "Bearer " + token();
  } catch (err) {
    return callback(err);
  }
  const req = http.request(API + path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(data), Authorization: auth },
    timeout: 5000,
  }, (res) => {
    let text = "";
    res.on("data", (chunk) => (text += chunk));
    res.on("end", () => {
      if (res.statusCode === 200) callback(null, JSON.parse(text).sent_to);
      else callback(null, null); // unknown CPE or send error: the provision sees null
    });
  });
  req.on("timeout", () => req.destroy(new Error("STUN server API timeout")));
  req.on("error", (err) => callback(err));
  req.end(data);
}

// connectionRequest(stunUsername) -> the address the request went to, or null.
exports.connectionRequest = function (args, callback) {
  post("/connection-request", { username: String(args[0]) }, callback);
};

// connectionRequestTo(address, crUsername, crPassword): to an explicit
// UDPConnectionRequestAddress (the Notification-based approach).
exports.connectionRequestTo = function (args, callback) {
  post("/connection-request", { address: String(args[0]), cr_username: String(args[1]), cr_password: String(args[2]) }, callback);
};
