//! The TCP transport: rank 0 listens at `MASTER_ADDR:MASTER_PORT`, every other rank connects
//! (retrying until the timeout) and says who it is. Collectives go through rank 0 (a star):
//! gather to rank 0, combine, send back. Simple and exact (sums in rank order, so every run
//! adds the same way); its bandwidth is what one link gives, so on GPUs NCCL carries the
//! gradients and this only exchanges NCCL's id.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::{Collective, Launch};

/// How long ranks wait for each other before saying so.
const PATIENCE: Duration = Duration::from_secs(5);

/// Bytes every connection starts with: protocol, version, then rank and world size.
const HELLO: &[u8; 8] = b"clipbrn1";

pub struct Tcp {
    rank: usize,
    /// Rank 0: streams to ranks 1..world (index = rank - 1). Others: the stream to rank 0.
    peers: Vec<TcpStream>,
}

impl Tcp {
    /// Connects the ranks of `launch`; blocks until all are there or `timeout` passes.
    pub fn connect(launch: &Launch, timeout: Duration) -> Result<Self> {
        let address = format!("{}:{}", launch.master_addr, launch.master_port);
        let started = Instant::now();
        let deadline = started + timeout;
        let mut peers = Vec::new();
        if launch.rank == 0 {
            let listener = TcpListener::bind(&address)
                .or_else(|_| TcpListener::bind(("0.0.0.0", launch.master_port)))
                .with_context(|| format!("rank 0 cannot listen on {address} (MASTER_ADDR:MASTER_PORT)"))?;
            listener.set_nonblocking(true)?;
            let mut told = false;
            let mut slots: Vec<Option<TcpStream>> = (1..launch.world).map(|_| None).collect();
            while slots.iter().any(Option::is_none) {
                match listener.accept() {
                    Ok((mut stream, from)) => {
                        stream.set_nonblocking(false)?;
                        stream.set_read_timeout(Some(timeout))?;
                        let (rank, world) = read_hello(&mut stream).with_context(|| format!("a connection from {from}"))?;
                        if world != launch.world {
                            bail!("rank {rank} (from {from}) says WORLD_SIZE={world}, rank 0 has {}", launch.world);
                        }
                        if rank == 0 || rank >= launch.world || slots[rank - 1].is_some() {
                            bail!("a second process claims RANK={rank} (from {from}): every process needs its own RANK");
                        }
                        stream.set_read_timeout(None)?;
                        stream.set_nodelay(true)?;
                        slots[rank - 1] = Some(stream);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        if !told && started.elapsed() > PATIENCE {
                            told = true;
                            eprintln!("rank 0: waiting for {} more ranks to connect to {address} (up to {} s)", slots.iter().filter(|s| s.is_none()).count(), timeout.as_secs());
                        }
                        if Instant::now() > deadline {
                            let missing: Vec<String> =
                                slots.iter().enumerate().filter(|(_, s)| s.is_none()).map(|(i, _)| (i + 1).to_string()).collect();
                            bail!("ranks {} did not connect to {address} within {} s", missing.join(", "), timeout.as_secs());
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(e) => return Err(e).context("accepting ranks"),
                }
            }
            peers = slots.into_iter().map(|s| s.expect("every slot filled")).collect();
        } else {
            let mut told = false;
            let mut stream = loop {
                match TcpStream::connect(&address) {
                    Ok(s) => break s,
                    Err(_) if Instant::now() < deadline => {
                        if !told && started.elapsed() > PATIENCE {
                            told = true;
                            eprintln!("rank {}: waiting for rank 0 at {address} (up to {} s)", launch.rank, timeout.as_secs());
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    Err(e) => return Err(e).with_context(|| format!("rank {} cannot reach rank 0 at {address} within {} s", launch.rank, timeout.as_secs())),
                }
            };
            stream.set_nodelay(true)?;
            stream.write_all(HELLO)?;
            stream.write_all(&(launch.rank as u32).to_le_bytes())?;
            stream.write_all(&(launch.world as u32).to_le_bytes())?;
            peers.push(stream);
        }
        Ok(Self { rank: launch.rank, peers })
    }
}

fn read_hello(stream: &mut TcpStream) -> Result<(usize, usize)> {
    let mut hello = [0u8; 16];
    stream.read_exact(&mut hello)?;
    if &hello[..8] != HELLO {
        bail!("not a clip-burn rank (another program on MASTER_PORT?)");
    }
    let word = |i: usize| u32::from_le_bytes(hello[i..i + 4].try_into().expect("4 bytes")) as usize;
    Ok((word(8), word(12)))
}

fn send(stream: &mut TcpStream, bytes: &[u8]) -> Result<()> {
    stream.write_all(&(bytes.len() as u64).to_le_bytes())?;
    stream.write_all(bytes)?;
    Ok(())
}

fn recv(stream: &mut TcpStream) -> Result<Vec<u8>> {
    let mut len = [0u8; 8];
    stream.read_exact(&mut len)?;
    let mut bytes = vec![0u8; u64::from_le_bytes(len) as usize];
    stream.read_exact(&mut bytes)?;
    Ok(bytes)
}

fn lost(rank: usize) -> impl Fn(anyhow::Error) -> anyhow::Error {
    move |e| e.context(format!("lost the connection to rank {rank} (did it fail?)"))
}

impl Collective for Tcp {
    fn all_gather(&mut self, data: &[u8]) -> Result<Vec<u8>> {
        if self.rank == 0 {
            let mut all = data.to_vec();
            for (i, peer) in self.peers.iter_mut().enumerate() {
                let part = recv(peer).map_err(lost(i + 1))?;
                if part.len() != data.len() {
                    bail!("rank {} sent {} bytes to gather, rank 0 {}: the ranks disagree on shapes", i + 1, part.len(), data.len());
                }
                all.extend(part);
            }
            for (i, peer) in self.peers.iter_mut().enumerate() {
                send(peer, &all).map_err(lost(i + 1))?;
            }
            Ok(all)
        } else {
            let root = &mut self.peers[0];
            send(root, data).map_err(lost(0))?;
            recv(root).map_err(lost(0))
        }
    }

    fn all_reduce_sum(&mut self, data: &mut [f32]) -> Result<()> {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        if self.rank == 0 {
            let mut sum: Vec<f32> = data.to_vec();
            for (i, peer) in self.peers.iter_mut().enumerate() {
                let part = recv(peer).map_err(lost(i + 1))?;
                if part.len() != bytes.len() {
                    bail!("rank {} sent {} bytes to reduce, rank 0 {}: the ranks disagree on shapes", i + 1, part.len(), bytes.len());
                }
                for (s, v) in sum.iter_mut().zip(part.chunks_exact(4)) {
                    *s += f32::from_le_bytes(v.try_into().expect("4 bytes"));
                }
            }
            for (i, peer) in self.peers.iter_mut().enumerate() {
                send(peer, bytemuck::cast_slice(&sum)).map_err(lost(i + 1))?;
            }
            data.copy_from_slice(&sum);
        } else {
            let root = &mut self.peers[0];
            send(root, bytes).map_err(lost(0))?;
            let sum = recv(root).map_err(lost(0))?;
            for (d, v) in data.iter_mut().zip(sum.chunks_exact(4)) {
                *d = f32::from_le_bytes(v.try_into().expect("4 bytes"));
            }
        }
        Ok(())
    }
}
