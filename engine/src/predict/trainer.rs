//! The one thread models are trained on: a dedicated worker at a low CPU priority (nice 10),
//! fed by a queue, so a thousand models due together take turns on it and the polls on the
//! async threads keep the CPU when they need it.

use std::sync::OnceLock;
use std::sync::mpsc::{Sender, channel};

type Job = Box<dyn FnOnce() + Send>;

fn queue() -> &'static std::sync::Mutex<Sender<Job>> {
    static QUEUE: OnceLock<std::sync::Mutex<Sender<Job>>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
        std::thread::Builder::new()
            .name("swell-trainer".into())
            .spawn(move || {
                // This thread only: a nice value is per thread on Linux.
                #[cfg(target_os = "linux")]
                unsafe {
                    libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10);
                }
                for job in rx {
                    job();
                }
            })
            .expect("the trainer thread starts");
        std::sync::Mutex::new(tx)
    })
}

/// Runs `work` on the trainer thread; resolves when it is done (queued behind earlier jobs).
pub async fn run<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(work());
    });
    queue().lock().map_err(|_| "the trainer queue is poisoned".to_string())?.send(job).map_err(|_| "the trainer thread stopped".to_string())?;
    rx.await.map_err(|_| "the trainer dropped the job (it panicked)".to_string())
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn jobs_run_in_order_on_one_low_priority_thread() {
        let a = super::run(|| std::thread::current().name().map(str::to_string)).await.unwrap();
        let b = super::run(|| unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }).await.unwrap();
        assert_eq!(a.as_deref(), Some("swell-trainer"));
        assert_eq!(b, 10);
    }
}
