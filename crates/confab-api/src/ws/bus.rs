//! The in-process bus: one tokio broadcast channel. A receiver that falls more than the
//! channel's capacity behind is told how many messages it lost.

use async_trait::async_trait;
use confab_core::bus::{Bus, BusError, BusMessage, BusReceiver};
use tokio::sync::broadcast;

pub struct LocalBus {
    tx: broadcast::Sender<BusMessage>,
}

impl LocalBus {
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(16));
        LocalBus { tx }
    }
}

impl Bus for LocalBus {
    fn publish(&self, msg: BusMessage) {
        // No subscriber is not an error: nobody is listening yet.
        let _ = self.tx.send(msg);
    }

    fn subscribe(&self) -> Box<dyn BusReceiver> {
        Box::new(LocalReceiver(self.tx.subscribe()))
    }
}

struct LocalReceiver(broadcast::Receiver<BusMessage>);

#[async_trait]
impl BusReceiver for LocalReceiver {
    async fn recv(&mut self) -> Result<BusMessage, BusError> {
        match self.0.recv().await {
            Ok(m) => Ok(m),
            Err(broadcast::error::RecvError::Lagged(n)) => Err(BusError::Lagged(n)),
            Err(broadcast::error::RecvError::Closed) => Err(BusError::Closed),
        }
    }
}
