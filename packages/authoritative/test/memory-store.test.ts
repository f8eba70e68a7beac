import { createMemoryStore } from '../src/index.js';
import { storeBattery } from './store-battery.js';

storeBattery('memory store', async (options) => ({ store: createMemoryStore(options) }));
